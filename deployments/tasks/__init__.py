"""Celery tasks, one module per topic; importing them here registers them with the app."""

from deployments.tasks import deploys, ops

__all__ = ["deploys", "ops"]
