from __future__ import annotations

from celery import shared_task

from approvals.services import approval_expire_due, approval_void_changed


@shared_task(ignore_result=True)
def approval_sweep() -> None:
    """Beat: end approval requests past their lifetime, void those whose release changed."""
    approval_expire_due()
    approval_void_changed()
