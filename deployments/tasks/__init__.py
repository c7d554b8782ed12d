"""Celery tasks, one module per topic; importing them here registers them with the app."""

from deployments.tasks import deploys, notifications, ops, releases

__all__ = ["deploys", "notifications", "ops", "releases"]
