from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals import policy
from deployments.selectors.deploys import deploy_get, deploy_list
from hotdash.permissions import role_required


@require_GET
@role_required(policy.can_view)
def deploy_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "deployments/deploy_list.html", {"deploys": deploy_list()})


@require_GET
@role_required(policy.can_view)
def deploy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "deployments/deploy_detail.html", {"deploy": deploy_get(pk=pk)})
