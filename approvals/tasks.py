"""Periodic audit tasks (beat: settings.CELERY_BEAT_SCHEDULE["audit-verify"])."""

from __future__ import annotations

from celery import shared_task

from approvals.audit import audit_chain_verify


@shared_task(name="approvals.tasks.audit_verify")
def audit_verify() -> bool:
    """Verify the whole audit chain and store the result; True when it holds."""
    return audit_chain_verify().ok
