"""Celery tasks, one module per topic; importing them here registers them with the app."""

from deployments.tasks import (
    backups,
    compliance,
    deploys,
    drift,
    github_reports,
    notifications,
    ops,
    previews,
    releases,
    uptime,
    webhooks,
)

__all__ = [
    "backups",
    "compliance",
    "deploys",
    "drift",
    "github_reports",
    "notifications",
    "ops",
    "previews",
    "releases",
    "uptime",
    "webhooks",
]
