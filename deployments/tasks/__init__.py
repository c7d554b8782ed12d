"""Celery tasks, one module per topic; importing them here registers them with the app."""

from deployments.tasks import (
    alerts,
    backups,
    compliance,
    deploys,
    drift,
    github_accounts,
    github_reports,
    notifications,
    ops,
    previews,
    releases,
    uptime,
    webhooks,
)

__all__ = [
    "alerts",
    "backups",
    "compliance",
    "deploys",
    "drift",
    "github_accounts",
    "github_reports",
    "notifications",
    "ops",
    "previews",
    "releases",
    "uptime",
    "webhooks",
]
