"""Uptime probes (beat: settings.CELERY_BEAT_SCHEDULE["uptime-probe-round"], every minute)."""

from __future__ import annotations

from celery import shared_task

from deployments.services import uptime


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=58)
def uptime_probe_round() -> None:
    uptime.uptime_probe_round()


@shared_task(ignore_result=True)
def uptime_probes_roll_up() -> None:
    uptime.uptime_probes_roll_up()
