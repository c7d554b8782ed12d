"""Celery tasks, one module per topic; importing them here registers them with the app."""

from deployments.tasks import (
    backups,
    deploys,
    drift,
    notifications,
    ops,
    previews,
    releases,
    webhooks,
)

__all__ = [
    "backups",
    "deploys",
    "drift",
    "notifications",
    "ops",
    "previews",
    "releases",
    "webhooks",
]
