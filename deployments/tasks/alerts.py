"""Thin alert task: beat evaluates the operational conditions every minute."""

from __future__ import annotations

from celery import shared_task

from deployments.services.alerts import alerts_evaluate


@shared_task(ignore_result=True, name="deployments.tasks.alerts.alerts_evaluate")
def alerts_evaluate_task() -> None:
    alerts_evaluate()
