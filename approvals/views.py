"""The approval queue and the pending-count badge."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals import policy
from approvals.selectors import approval_count_pending, approval_list_pending
from hotdash.permissions import role_required


@require_GET
@role_required(policy.can_view)
def queue(request: HttpRequest) -> HttpResponse:
    template = "approvals/queue.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#pending-list"
    return render(request, template, {"pending": approval_list_pending()})


@require_GET
@role_required(policy.can_view)
def pending_count(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "components/_pending_count.html",
        {"pending_approvals_count": approval_count_pending()},
    )
