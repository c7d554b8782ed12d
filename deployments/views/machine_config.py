"""An environment's declared machine configuration: read it from the app's fly.toml (and
apply that), and reconcile the machines with it."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from approvals import policy
from deployments.models import Release
from deployments.selectors.environments import environment_detail_get
from deployments.services.machine_config import (
    config_reconcile_request,
    fly_toml_apply,
    fly_toml_read,
)
from hotdash.errors import Refused
from hotdash.permissions import client_ip, role_required


class ReconcileForm(forms.Form):
    reason = forms.CharField(max_length=2000)


def _release(request: HttpRequest, environment) -> Release:
    """The release named by ``release`` (GET or POST), else the live one; 404 otherwise."""
    raw = request.GET.get("release") or request.POST.get("release") or ""
    if not raw and environment.current_release_id:
        raw = str(environment.current_release_id)
    if not raw.isascii() or not raw.isdigit() or int(raw) >= 2**63:
        raise Http404("No such release.")
    return get_object_or_404(Release, pk=int(raw), app_id=environment.app_id)


@require_GET
@role_required(policy.can_administer)
def fly_toml_review(request: HttpRequest, pk: int) -> HttpResponse:
    """The changes the fly.toml at a release's tag would make, for an admin to apply."""
    environment = environment_detail_get(pk=pk)
    release = _release(request, environment)
    try:
        read, error = fly_toml_read(environment=environment, release=release), ""
    except Refused as refusal:
        read, error = None, refusal.message
    return render(
        request,
        "deployments/fly_toml_review.html",
        {"environment": environment, "release": release, "read": read, "error": error},
    )


@require_POST
@role_required(policy.can_administer)
def fly_toml_apply_view(request: HttpRequest, pk: int) -> HttpResponse:
    environment = environment_detail_get(pk=pk)
    release = _release(request, environment)
    try:
        read = fly_toml_apply(
            environment=environment,
            release=release,
            actor=request.user,
            reviewed_blob_sha=request.POST.get("blob_sha", ""),
            ip=client_ip(request),
        )
    except Refused as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(
            request,
            f"{len(read.changes)} value(s) of {environment} now as {read.path} at "
            f"{release.tag} declares."
            if read.changes
            else f"{read.path} at {release.tag} declares what {environment} already does.",
        )
    return redirect("deployments:environment-detail", pk=pk)


@require_POST
@role_required(policy.can_administer)
def reconcile_view(request: HttpRequest, pk: int) -> HttpResponse:
    environment = environment_detail_get(pk=pk)
    form = ReconcileForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A reason is required to reconcile.")
        return redirect("deployments:environment-detail", pk=pk)
    try:
        deploy = config_reconcile_request(
            environment=environment,
            actor=request.user,
            reason=form.cleaned_data["reason"],
            ip=client_ip(request),
        )
    except Refused as refusal:
        messages.error(request, refusal.message)
        return redirect("deployments:environment-detail", pk=pk)
    messages.success(request, f"Reconcile requested as deploy #{deploy.pk}.")
    return redirect("deployments:deploy-detail", pk=deploy.pk)
