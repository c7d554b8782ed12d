"""Periodic audit tasks (beat: settings.CELERY_BEAT_SCHEDULE["audit-verify"])."""

from __future__ import annotations

from celery import shared_task

from approvals.audit import audit_chain_anchor


@shared_task(name="approvals.tasks.audit_verify")
def audit_verify() -> bool:
    """Verify the whole audit chain (against the anchors too) and store the result; when it
    holds, write the hourly anchor. True when it holds."""
    verification, _anchor = audit_chain_anchor()
    return verification.ok
