"""Thin notification task: one delivery attempt, then re-send itself with a backoff."""

from __future__ import annotations

from celery import shared_task

from deployments.services.notifications import notification_deliver as deliver
from deployments.services.notifications import notification_retry


@shared_task(ignore_result=True)
def notification_deliver(notification_id: int) -> None:
    countdown = deliver(notification_id=notification_id)
    if countdown is not None:
        notification_retry(notification_id=notification_id, countdown=countdown)
