"""Periodic approval and audit tasks (beat: settings.CELERY_BEAT_SCHEDULE["approval-sweep"],
["audit-verify"])."""

from __future__ import annotations

from celery import shared_task

from approvals.audit import audit_chain_anchor
from approvals.services import approval_expire_due, approval_void_changed


# The name it had when it lived in deployments.tasks, so beat entries and queued messages hold.
@shared_task(name="deployments.tasks.approvals.approval_sweep", ignore_result=True)
def approval_sweep() -> None:
    """Beat: end approval requests past their lifetime, void those whose release changed."""
    approval_expire_due()
    approval_void_changed()


@shared_task(name="approvals.tasks.audit_verify")
def audit_verify() -> bool:
    """Verify the whole audit chain (against the anchors too) and store the result; when it
    holds, write the hourly anchor. True when it holds."""
    verification, _anchor = audit_chain_anchor()
    return verification.ok
