"""Reads for approval pages."""

from __future__ import annotations

from approvals.models import ApprovalRequest


def approval_count_pending() -> int:
    return ApprovalRequest.objects.filter(state=ApprovalRequest.State.PENDING).count()


def approval_list_pending() -> list[ApprovalRequest]:
    return list(
        ApprovalRequest.objects.filter(state=ApprovalRequest.State.PENDING)
        .select_related("deploy__environment__app", "deploy__release", "deploy__requested_by")
        .order_by("expires_at")
    )
