"""Operational bookkeeping."""

from __future__ import annotations

from django.utils import timezone

from deployments.models import WorkerHeartbeat


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """Note that ``hostname`` just executed a task. Not audited: it changes no deploy state."""
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )
    return heartbeat
