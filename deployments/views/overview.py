from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals import policy
from deployments.selectors.environments import emergency_rollbacks_unacknowledged
from deployments.selectors.overview import overview_list
from hotdash.permissions import role_required


@require_GET
@role_required(policy.can_view)
def overview(request: HttpRequest) -> HttpResponse:
    """The page, or (htmx) only its apps region, which polls itself while anything runs."""
    template = "deployments/overview.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#overview-apps"
    overview = overview_list()
    context = {
        "apps": overview.apps,
        "busy": overview.busy,
        "can_administer": policy.can_administer(request.user),
        "emergencies": emergency_rollbacks_unacknowledged(),
        "can_acknowledge": policy.can_approve(request.user),
    }
    return render(request, template, context)
