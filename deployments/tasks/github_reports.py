"""Thin GitHub outbox tasks: one paced delivery per message; a beat sweep resends lost chains."""

from __future__ import annotations

from celery import shared_task

from deployments import task_names
from deployments.services.github_reports import (
    github_reports_deliver,
    github_reports_resend_stuck,
)


@shared_task(name=task_names.GITHUB_REPORTS_DELIVER, ignore_result=True)
def github_reports_deliver_task(key: str, token: str) -> None:
    github_reports_deliver(key=key, token=token)


@shared_task(
    ignore_result=True, name="deployments.tasks.github_reports.github_reports_resend_stuck"
)
def github_reports_resend_stuck_task() -> None:
    github_reports_resend_stuck()
