"""The compliance sweep (beat: settings.CELERY_BEAT_SCHEDULE["compliance-sweep"], daily by
default; or a person's "Run now" on /ops/compliance/)."""

from __future__ import annotations

from celery import shared_task

from deployments import task_names
from deployments.services.compliance import compliance_sweep_job as sweep


@shared_task(
    ignore_result=True,
    name=task_names.COMPLIANCE_SWEEP,
    soft_time_limit=1800,
    time_limit=1860,
)
def compliance_sweep_job(app_id: int | None = None, requested_by_id: int | None = None) -> None:
    sweep(app_id=app_id, requested_by_id=requested_by_id)
