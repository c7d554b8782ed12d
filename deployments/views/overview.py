from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals import policy
from deployments.selectors.overview import overview_list
from hotdash.permissions import role_required


@require_GET
@role_required(policy.can_view)
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "deployments/overview.html", {"apps": overview_list()})
