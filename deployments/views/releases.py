from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals import policy
from deployments.selectors.releases import release_get, release_list, rollback_list
from hotdash.permissions import role_required


@require_GET
@role_required(policy.can_view)
def release_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "deployments/release_list.html", {"releases": release_list()})


@require_GET
@role_required(policy.can_view)
def release_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "deployments/release_detail.html", {"release": release_get(pk=pk)})


@require_GET
@role_required(policy.can_view)
def rollback_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "deployments/rollback_list.html", {"rollbacks": rollback_list()})
