"""The environment page: what is live, its machines, lock and freeze windows, deploy actions."""

from __future__ import annotations

from html import escape

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from approvals import policy
from deployments.models import FreezeWindow
from deployments.selectors.activity import environment_activity
from deployments.selectors.drift import machines_drift
from deployments.selectors.environments import (
    environment_bad_releases,
    environment_config_releases,
    environment_deployable_releases,
    environment_detail_get,
    environment_freeze_windows,
    environment_recent_deploys,
    environment_trouble,
)
from deployments.selectors.uptime import uptime_failures, uptime_list
from deployments.services.environments import (
    environment_lock,
    environment_machines,
    environment_unlock,
    freeze_window_add,
    freeze_window_remove,
)
from deployments.services.rollbacks import emergency_rollback_refusal
from deployments.views.rows import KIND_LABELS, deploy_number_cell, deploy_state_cell
from hotdash import input_gate
from hotdash.errors import Refused
from hotdash.integrations import APIError
from hotdash.permissions import client_ip, role_required
from hotdash.templatetags.times import ago


class LockForm(forms.Form):
    reason = forms.CharField(max_length=2000)


class FreezeWindowForm(forms.Form):
    starts_at = input_gate.DateTimeField(help_text="UTC, e.g. 2026-12-24 00:00")
    ends_at = input_gate.DateTimeField(help_text="UTC")
    reason = forms.CharField(max_length=200)


def recent_deploy_rows(deploys: list[tuple]) -> SafeString:
    """The environment page's recent deploys table body (see deployments.views.rows)."""
    rows = []
    for deploy in deploys:
        rows.append(
            f'<tr id="deploy-{deploy.id}"><td>{deploy_number_cell(deploy.id)}</td>'
            f"<td>{escape(deploy.release_tag or deploy.image_ref)}</td>"
            f"<td>{escape(KIND_LABELS.get(deploy.kind, deploy.kind))}</td>"
            f"<td>{deploy_state_cell(deploy.id, deploy.state)}</td>"
            f"<td>{escape(deploy.requester_name)}</td><td>{ago(deploy.created_at)}</td></tr>"
        )
    return mark_safe("".join(rows))  # every interpolated value is escaped above


@require_GET
@role_required(policy.can_view)
def environment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    environment = environment_detail_get(pk=pk)
    # What the "Now" and "Recent deploys" region shows: all its htmx refresh renders.
    live = {
        "environment": environment,
        "deploy_rows": recent_deploy_rows(environment_recent_deploys(environment=environment)),
        "activity": environment_activity(environment_ids=[environment.pk])[environment.pk],
    }
    template = "deployments/environment_detail.html"
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, template + "#environment-deploys", live)
    user = request.user
    can_request, can_approve = policy.can_request_deploy(user), policy.can_approve(user)
    can_administer = policy.can_administer(user)
    # The deploy card (releases, emergency rollback) is shown to requesters only, the fly.toml
    # form to admins only: nothing is read for a part the page does not show.
    emergency_refusal = (
        emergency_rollback_refusal(environment=environment, user=user)
        if can_request and can_approve
        else None
    )
    context = {
        **live,
        "uptime": uptime_list(environment_ids=[environment.pk], now=timezone.now())[environment.pk],
        "failures": uptime_failures(environment=environment),
        "releases": environment_deployable_releases(environment=environment) if can_request else [],
        "bad_releases": environment_bad_releases(environment=environment) if can_request else [],
        "freeze_windows": environment_freeze_windows(environment=environment),
        "can_request": can_request,
        "can_lock": policy.can_lock(user),
        "can_administer": can_administer,
        "can_approve": can_approve,
        "emergency_refusal": emergency_refusal,
        # Shown with the emergency rollback button, offered only when nothing refuses it.
        "trouble": environment_trouble(environment=environment)
        if can_request and can_approve and emergency_refusal is None
        else "",
        "config_releases": environment_config_releases(environment=environment)
        if can_administer
        else [],
        "lock_form": LockForm(),
        "window_form": FreezeWindowForm(),
    }
    return render(request, template, context)


@require_GET
@role_required(policy.can_view)
def environment_machines_partial(request: HttpRequest, pk: int) -> HttpResponse:
    environment = environment_detail_get(pk=pk)
    try:
        machines, error = environment_machines(environment=environment), ""
    except APIError as exc:
        machines, error = [], f"Could not ask Fly for the machines: {exc.message}"
    return render(
        request,
        "deployments/environment_detail.html#environment-machines",
        {
            "environment": environment,
            "machines": machines_drift(environment=environment, machines=machines),
            "machines_error": error,
        },
    )


def _apply(request: HttpRequest, action, success: str, **kwargs) -> None:
    try:
        action(actor=request.user, ip=client_ip(request), **kwargs)
        messages.success(request, success)
    except Refused as refusal:
        messages.error(request, refusal.message)


@require_POST
@role_required(policy.can_lock)
def environment_lock_view(request: HttpRequest, pk: int) -> HttpResponse:
    environment = environment_detail_get(pk=pk)
    form = LockForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A reason is required to lock or unlock.")
    elif request.POST.get("action") == "unlock":
        _apply(
            request,
            environment_unlock,
            f"{environment} unlocked.",
            environment=environment,
            reason=form.cleaned_data["reason"],
        )
    else:
        _apply(
            request,
            environment_lock,
            f"{environment} locked.",
            environment=environment,
            reason=form.cleaned_data["reason"],
        )
    return redirect("deployments:environment-detail", pk=pk)


@require_POST
@role_required(policy.can_lock)
def freeze_window_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    environment = environment_detail_get(pk=pk)
    form = FreezeWindowForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Freeze window: "
            + "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()),
        )
    else:
        _apply(
            request,
            freeze_window_add,
            f"Freeze window added to {environment}.",
            environment=environment,
            **form.cleaned_data,
        )
    return redirect("deployments:environment-detail", pk=pk)


@require_POST
@role_required(policy.can_lock)
def freeze_window_remove_view(request: HttpRequest, pk: int, window_pk: int) -> HttpResponse:
    window = get_object_or_404(FreezeWindow, pk=window_pk, environment_id=pk)
    _apply(request, freeze_window_remove, "Freeze window removed.", window=window)
    return redirect("deployments:environment-detail", pk=pk)
