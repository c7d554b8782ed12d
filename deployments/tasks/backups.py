"""The backup job (beat: settings.CELERY_BEAT_SCHEDULE["backup-and-drill"], weekly by default;
or an admin's "Run backup now" on the Ops page)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from deployments import task_names
from deployments.services.backups import backup_run

# A dump and a restore may each take BACKUP_TIMEOUT_SECONDS; the counts and checks add a margin.
_LIMIT = 2 * settings.BACKUP_TIMEOUT_SECONDS + 600


@shared_task(
    ignore_result=True,
    name=task_names.BACKUP_RUN,
    time_limit=_LIMIT + 60,
    soft_time_limit=_LIMIT,
)
def backup_scheduled(requested_by_id: int | None = None) -> None:
    backup_run(requested_by_id=requested_by_id)
