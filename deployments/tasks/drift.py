"""The beat job that compares every environment's machines with its declared config."""

from __future__ import annotations

from celery import shared_task

from deployments.services.drift import drift_check_all


@shared_task(ignore_result=True)
def drift_sweep() -> None:
    drift_check_all()
