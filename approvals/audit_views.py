"""The audit log pages and exports."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from approvals import policy
from approvals.models import AuditEvent
from hotdash.permissions import role_required


@require_GET
@never_cache
@role_required(policy.can_view)
def audit(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.order_by("-id")[:100]
    return render(request, "approvals/audit.html", {"events": events})
