"""Thin release tasks: the periodic reconcile that catches missed ``release`` webhooks."""

from __future__ import annotations

from celery import shared_task

from deployments.services.releases import release_sync_all


@shared_task(ignore_result=True)
def release_reconcile() -> dict[str, str]:
    return release_sync_all(actor="system")
