"""Thin notification tasks: one delivery attempt, then re-send itself with a backoff; a beat
sweep re-sends notifications whose message or worker was lost; another reminds approvers."""

from __future__ import annotations

from celery import shared_task

from deployments import task_names
from deployments.services.notifications import (
    approval_reminders_send,
    notification_deliver,
    notification_resend_stuck,
    notification_retry,
)


@shared_task(name=task_names.NOTIFICATION_DELIVER, ignore_result=True)
def notification_deliver_task(notification_id: int, attempt: int = 1) -> None:
    countdown = notification_deliver(notification_id=notification_id, attempt=attempt)
    if countdown is not None:
        notification_retry(
            notification_id=notification_id, attempt=attempt + 1, countdown=countdown
        )


@shared_task(ignore_result=True, name="deployments.tasks.notifications.notification_resend_stuck")
def notification_resend_stuck_task() -> None:
    notification_resend_stuck()


@shared_task(ignore_result=True, name="deployments.tasks.notifications.approval_reminders_send")
def approval_reminders_send_task() -> None:
    approval_reminders_send()
