"""Add app (admins): pick a repository the GitHub App can see, review what HotDash proposes
from its fly.toml files and branch protection, confirm; then the checklist of what is missing."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from approvals import policy
from deployments.models import App
from deployments.selectors.installations import installation_repository_list
from deployments.services.installations import installation_repositories_refresh
from deployments.services.onboarding import app_add, app_checklist, app_propose
from hotdash.errors import Refused
from hotdash.permissions import client_ip, role_required


@require_GET
@role_required(policy.can_administer)
def app_add_page(request: HttpRequest) -> HttpResponse:
    """The repositories to pick from and, once one is picked, the proposal for it."""
    repository = request.GET.get("repository", "").strip()
    proposal, error = None, ""
    if repository:
        try:
            proposal = app_propose(full_name=repository)
        except Refused as refusal:
            error = refusal.message
    return render(
        request,
        "deployments/app_add.html",
        {
            "repositories": installation_repository_list(),
            "github_app": bool(settings.GITHUB_APP_ID),
            "repository": repository,
            "proposal": proposal,
            "error": error,
        },
    )


@require_POST
@role_required(policy.can_administer)
def app_add_action(request: HttpRequest) -> HttpResponse:
    repository = request.POST.get("repository", "")
    try:
        added = app_add(
            actor=request.user,
            full_name=repository,
            reviewed=request.POST.get("fingerprint", ""),
            ip=client_ip(request),
        )
    except Refused as refusal:
        messages.error(request, refusal.message)
        return redirect(f"{reverse('deployments:app-add')}?{_query(repository)}")
    messages.success(request, f"Added {added.app.name}. {added.synced}")
    return redirect("deployments:app-setup", pk=added.app.pk)


def _query(repository: str) -> str:
    return urlencode({"repository": repository[:200]})


@require_POST
@role_required(policy.can_administer)
def installations_refresh_action(request: HttpRequest) -> HttpResponse:
    try:
        change = installation_repositories_refresh(actor=request.user, ip=client_ip(request))
    except Refused as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"{change}.")
    return redirect("deployments:app-add")


@require_GET
@role_required(policy.can_administer)
def app_setup_page(request: HttpRequest, pk: int) -> HttpResponse:
    """What is still missing before the app's first deploy (read now from HotDash and Fly)."""
    app = get_object_or_404(App, pk=pk)
    return render(
        request,
        "deployments/app_setup.html",
        {"app": app, "checklist": app_checklist(app=app)},
    )
