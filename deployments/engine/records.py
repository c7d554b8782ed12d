"""A deploy's log lines and audit events, as every part of the engine writes them."""

from __future__ import annotations

from typing import Any

from approvals.audit import record
from deployments.models import Deploy, DeployLog


def audit(*, deploy: Deploy, actor: Any, verb: str, data: dict | None = None, ip=None) -> None:
    env = deploy.environment
    record(
        actor=actor,
        verb=verb,
        target=deploy,
        scope=env,
        data=data,
        ip=ip,
    )


def log_line(deploy: Deploy, message: str, level: str = DeployLog.Level.INFO) -> None:
    DeployLog.objects.create(deploy=deploy, level=level, message=message)
