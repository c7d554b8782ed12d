"""Thin webhook tasks: process one stored delivery; re-send deliveries whose message was lost;
empty old payloads."""

from __future__ import annotations

import logging

from celery import shared_task

from deployments import task_names
from deployments.services.webhooks import (
    webhook_deliveries_resend_stuck,
    webhook_delivery_fail,
    webhook_delivery_process,
    webhook_payloads_prune,
)
from hotdash.integrations import RetryableAPIError

log = logging.getLogger(__name__)

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
    except Exception as error:
        log.exception("webhook delivery %s crashed", delivery_pk)
        webhook_delivery_fail(delivery_pk=delivery_pk, detail=f"{type(error).__name__}: {error}")


@shared_task(ignore_result=True, name="deployments.tasks.webhooks.webhook_deliveries_resend_stuck")
def webhook_deliveries_resend_stuck_task() -> None:
    webhook_deliveries_resend_stuck()


@shared_task(ignore_result=True, name="deployments.tasks.webhooks.webhook_payloads_prune")
def webhook_payloads_prune_task() -> None:
    webhook_payloads_prune()
