"""Celery tasks, one module per topic; importing them here registers them with the app."""

from deployments.tasks import (
    approvals,
    backups,
    compliance,
    deploys,
    notifications,
    ops,
    previews,
    releases,
    webhooks,
)

__all__ = [
    "approvals",
    "backups",
    "compliance",
    "deploys",
    "notifications",
    "ops",
    "previews",
    "releases",
    "webhooks",
]
