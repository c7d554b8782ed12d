"""Deploys: the list, the deploy page (live while it runs), requesting one, cancel and abort."""

from __future__ import annotations

from html import escape
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from approvals import policy
from deployments.models import OVERRIDE_LABELS, Deploy, Environment, Release
from deployments.selectors.deploy_history import (
    DeployFilterForm,
    HistoryRow,
    deploy_history_page,
)
from deployments.selectors.deploys import (
    deploy_duration,
    deploy_get,
    deploy_log_tail,
    deploy_outcome,
    deploy_step_progress,
)
from deployments.selectors.promotion import deploy_promote_offer
from deployments.selectors.queue import queue_position
from deployments.services.deploys import deploy_abort
from deployments.services.requests import deploy_request, deploy_request_cancel
from deployments.views.rows import KIND_LABELS, bad_mark, deploy_number_cell, deploy_state_cell
from hotdash.api import refusal_status
from hotdash.errors import Refused
from hotdash.input_gate import parse_id
from hotdash.permissions import client_ip, role_required
from hotdash.templatetags.times import ago


def _is_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


class ReleaseChoiceField(forms.ModelChoiceField):
    """Each choice says when its release would be refused, so a bad one is never a surprise."""

    def label_from_instance(self, obj: Release) -> str:
        if obj.is_bad:
            return f"{obj} — marked bad: refused until the mark is cleared"
        return str(obj)


class DeployRequestForm(forms.Form):
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.exclude(kind=Environment.Kind.PREVIEW).select_related("app")
    )
    release = ReleaseChoiceField(queryset=Release.objects.select_related("app"))
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    overrides = forms.MultipleChoiceField(
        choices=list(OVERRIDE_LABELS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Override (admins only)",
    )
    override_reason = forms.CharField(max_length=2000, required=False)
    confirm_no_op = forms.BooleanField(
        required=False, label="Deploy it anyway: I know this deploy changes nothing"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        environment, release = data.get("environment"), data.get("release")
        if environment and release and environment.app_id != release.app_id:
            self.add_error("release", f"{release} is not a release of {environment.app}.")
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000)


def deploy_history_rows(rows: list[HistoryRow]) -> SafeString:
    """The Deploys page's table body (see deployments.views.rows)."""
    html = []
    for row in rows:
        bad = f" {bad_mark(row.bad_reason)}" if row.bad_reason is not None else ""
        if row.state == Deploy.State.SUCCEEDED:
            outcome = escape(row.health_summary or "Live")
        elif row.state == Deploy.State.FAILED:
            outcome = escape(Truncator(row.error or "Failed").chars(120))
        elif row.is_terminal:
            outcome = '<span class="muted">never ran</span>'
        else:
            outcome = '<span class="muted">not finished</span>'
        html.append(
            f'<tr id="deploy-{row.pk}"><td data-label="#">{deploy_number_cell(row.pk)}</td>'
            f'<td data-label="Kind">{escape(KIND_LABELS.get(row.kind, row.kind))}</td>'
            f'<td data-label="App / environment">{escape(row.app_name)} / '
            f"{escape(row.environment_name)}</td>"
            f'<td data-label="Release">{escape(row.release_tag or row.image_ref)}{bad}</td>'
            f'<td data-label="State">{deploy_state_cell(row.pk, row.state)}</td>'
            f'<td data-label="Requested by">{escape(row.requester_name)}</td>'
            f'<td data-label="Approved by">{escape(", ".join(row.approvers) or "—")}</td>'
            f'<td data-label="When">{ago(row.created_at)}</td>'
            f'<td data-label="Duration">{escape(row.duration or "—")}</td>'
            f'<td data-label="Outcome">{outcome}</td></tr>'
        )
    return mark_safe("".join(html))  # every interpolated value is escaped above


@require_GET
@role_required(policy.can_view)
def deploy_list_page(request: HttpRequest) -> HttpResponse:
    """The history, filtered and paged by the query string; its table polls itself while a
    deploy on it is not finished."""
    template = "deployments/deploy_list.html" + ("#deploy-table" if _is_partial(request) else "")
    form = DeployFilterForm(request.GET)
    if form.is_valid():
        page = deploy_history_page(filters=form.filters(), before=form.cleaned_data["before"])
        rows, older = page.rows, page.older_cursor
    else:
        rows, older = [], None
    return render(
        request,
        template,
        {
            "form": form,
            "rows": deploy_history_rows(rows),
            "query": form.query() if form.is_valid() else "",
            "older_query": form.query(before=older) if older else "",
            "paged": bool(form.is_valid() and form.cleaned_data["before"]),
            "any_live": any(not row.is_terminal for row in rows),
            "can_request": policy.can_request_deploy(request.user),
        },
        status=200 if form.is_valid() else 400,
    )


def _detail_context(request: HttpRequest, deploy: Deploy) -> dict[str, Any]:
    steps = deploy_step_progress(deploy=deploy)
    approval = getattr(deploy, "approval_request", None)
    return {
        "deploy": deploy,
        "steps": steps,
        "outcome": deploy_outcome(deploy=deploy, steps=steps),
        "duration": deploy_duration(deploy=deploy),
        "log": deploy_log_tail(deploy=deploy),
        "queue_position": queue_position(deploy=deploy),
        "approval": approval,
        "decisions": list(approval.decisions.select_related("user")) if approval else [],
        "can_cancel": deploy.state
        in (Deploy.State.REQUESTED, Deploy.State.AWAITING_APPROVAL, Deploy.State.QUEUED)
        and policy.can_cancel(request.user, deploy),
        "can_abort": deploy.state in Deploy.ACTIVE_STATES
        and deploy.abort_requested_at is None
        and policy.can_abort(request.user),
        "reason_form": ReasonForm(),
        "promote": deploy_promote_offer(deploy=deploy, now=timezone.now())
        if policy.can_request_deploy(request.user)
        else None,
    }


@never_cache
@vary_on_headers("HX-Request")
@require_GET
@role_required(policy.can_view)
def deploy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deploy = deploy_get(pk=pk)
    template = "deployments/deploy_detail.html" + ("#deploy-live" if _is_partial(request) else "")
    return render(request, template, _detail_context(request, deploy))


def _initial(request: HttpRequest) -> dict[str, Any]:
    initial = {}
    for name in ("environment", "release"):
        value = parse_id(request.GET.get(name))
        if value is not None:
            initial[name] = value
    return initial


def _request_partial(request: HttpRequest) -> str:
    """The piece of the request form an htmx request replaces: the form after a POST, its notes
    when the environment or release changes, the drawer when it opens."""
    if not _is_partial(request):
        return ""
    if request.method == "POST":
        return "#request-form"
    return "#request-notes" if request.htmx.target == "request-notes" else "#request-drawer"


def _request_page(
    request: HttpRequest, form: DeployRequestForm, *, refusal: Refused | None, status: int
) -> HttpResponse:
    environment = None
    env_id = parse_id(form["environment"].value())
    if env_id is not None:
        environment = (
            Environment.objects.select_related("app", "current_release", "locked_by")
            .filter(pk=env_id)
            .first()
        )
    template = "deployments/deploy_new.html" + _request_partial(request)
    context = {
        "form": form,
        "refusal": refusal,
        "environment": environment,
        "can_override": policy.can_override(request.user),
        "as_drawer": _is_partial(request),
        "title": "Request a deploy",
    }
    return render(request, template, context, status=status)


@never_cache
@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
@role_required(policy.can_request_deploy)
def deploy_new(request: HttpRequest) -> HttpResponse:
    """The request form: a page, or a drawer when opened with htmx."""
    if request.method == "GET":
        form = DeployRequestForm(initial=_initial(request))
        return _request_page(request, form, refusal=None, status=200)
    form = DeployRequestForm(request.POST)
    if not form.is_valid():
        return _request_page(request, form, refusal=None, status=422)
    data = form.cleaned_data
    try:
        deploy = deploy_request(
            environment=data["environment"],
            release=data["release"],
            requested_by=request.user,
            reason=data["reason"],
            overrides=data["overrides"],
            override_reason=data["override_reason"],
            confirm_no_op=data["confirm_no_op"],
            ip=client_ip(request),
        )
    except Refused as refusal:
        status = refusal_status(refusal.code)
        return _request_page(request, form, refusal=refusal, status=status)
    messages.success(request, f"Deploy #{deploy.pk} requested: {deploy.get_state_display()}.")
    url = reverse("deployments:deploy-detail", args=[deploy.pk])
    if _is_partial(request):
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _reason(request: HttpRequest) -> str | None:
    form = ReasonForm(request.POST)
    if form.is_valid():
        return form.cleaned_data["reason"]
    messages.error(request, "Give a reason.")
    return None


@require_POST
@role_required(policy.can_request_deploy)
def deploy_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    deploy = get_object_or_404(Deploy, pk=pk)
    if not policy.can_cancel(request.user, deploy):
        raise PermissionDenied("Only the requester or an approver may cancel this deploy.")
    reason = _reason(request)
    if reason is not None:
        try:
            deploy_request_cancel(
                deploy=deploy, actor=request.user, reason=reason, ip=client_ip(request)
            )
            messages.success(request, f"Deploy #{deploy.pk} cancelled.")
        except Refused as error:
            messages.error(request, error.message)
    return redirect("deployments:deploy-detail", pk=pk)


@require_POST
@role_required(policy.can_abort)
def deploy_abort_view(request: HttpRequest, pk: int) -> HttpResponse:
    deploy = get_object_or_404(Deploy, pk=pk)
    reason = _reason(request)
    if reason is not None:
        try:
            deploy_abort(deploy=deploy, actor=request.user, reason=reason, ip=client_ip(request))
            messages.success(
                request, f"Abort requested: deploy #{deploy.pk} stops after its current batch."
            )
        except Refused as error:
            messages.error(request, error.message)
    return redirect("deployments:deploy-detail", pk=pk)
