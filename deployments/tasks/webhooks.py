"""Thin webhook tasks: drain the stored deliveries; process one (retries, lost messages);
re-send deliveries whose message was lost; empty old payloads."""

from __future__ import annotations

from celery import shared_task

from deployments import task_names
from deployments.services.webhooks import (
    webhook_deliveries_drain,
    webhook_deliveries_resend_stuck,
    webhook_delivery_crashed,
    webhook_delivery_fail,
    webhook_delivery_process,
    webhook_payloads_prune,
)
from hotdash.integrations import RetryableAPIError

MAX_RETRIES = 6


@shared_task(
    name=task_names.WEBHOOK_DELIVERY_PROCESS, bind=True, ignore_result=True, max_retries=MAX_RETRIES
)
def webhook_delivery_process_task(self, delivery_pk: int) -> None:
    try:
        webhook_delivery_process(delivery_pk=delivery_pk)
    except RetryableAPIError as error:
        if self.request.retries >= MAX_RETRIES:
            webhook_delivery_fail(delivery_pk=delivery_pk, detail=f"gave up: {error}")
            return
        countdown = error.retry_after or min(300, 5 * 2**self.request.retries)
        raise self.retry(countdown=countdown) from None
    except Exception as error:  # noqa: BLE001 - the delivery ends failed, with the reason
        webhook_delivery_crashed(delivery_pk=delivery_pk, error=error)


@shared_task(name=task_names.WEBHOOK_DELIVERIES_DRAIN, ignore_result=True)
def webhook_deliveries_drain_task() -> None:
    webhook_deliveries_drain()


@shared_task(ignore_result=True, name="deployments.tasks.webhooks.webhook_deliveries_resend_stuck")
def webhook_deliveries_resend_stuck_task() -> None:
    webhook_deliveries_resend_stuck()


@shared_task(ignore_result=True, name="deployments.tasks.webhooks.webhook_payloads_prune")
def webhook_payloads_prune_task() -> None:
    webhook_payloads_prune()
