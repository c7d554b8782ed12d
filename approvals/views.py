"""The approval queue, the drawer (GET), the decision and the break-glass bypass (POST), and
the pending-count badge.

The drawer URL is an ordinary page without JavaScript; with htmx it renders only the
``drawer`` partial into #drawer-root. The decide view answers 422 (form errors), 403/409
(refused: the form re-rendered read-only with the reason) or success with ``HX-Trigger``
events; without htmx it redirects to the queue (post/redirect/get). The bypass view answers
the same way (429 when re-authentication is throttled).
"""

from __future__ import annotations

from functools import partial
from html import escape
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils.safestring import SafeString, mark_safe
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import reswap, retarget, trigger_client_event

from approvals import policy
from approvals.audit import Target, record
from approvals.forms import BypassForm, DecisionForm
from approvals.models import ApprovalRequest
from approvals.selectors import (
    PendingRow,
    approval_count_waiting_for,
    approval_drawer_facts,
    approval_get,
    approval_queue_for,
)
from approvals.services import approval_bypass, approval_decide
from hotdash.api import refusal_status
from hotdash.errors import Refused
from hotdash.paths import object_url
from hotdash.permissions import client_ip, role_required
from hotdash.templatetags.times import ago

# Events the server announces; page regions subscribe with hx-trigger="<name> from:body".
APPROVAL_DECIDED = "approval-decided"
DRAWER_CLOSE = "drawer-close"


def _is_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def queue_rows(rows: list[PendingRow], *, others: bool) -> SafeString:
    """A queue table's body as HTML, every value escaped (see deployments.views.rows)."""
    drawer_url = partial(object_url, "approvals:drawer")
    html = []
    for row in rows:
        approval, gate = row.approval, row.gate
        deploy = approval.deploy
        url = drawer_url(approval.pk)
        tag = deploy.release.tag if deploy.release else ""
        if gate.unsatisfiable:
            verdict = f'<span class="error" data-unsatisfiable>{escape(gate.unsatisfiable)}</span>'
        else:
            verdict = f"{len(gate.eligible)} eligible for {gate.still_needed} more"
        why = f'<td data-label="Why not you">{escape(row.not_yours)}</td>' if others else ""
        html.append(
            f'<tr id="approval-{approval.pk}"><td data-label="Deploy"><a href="{url}" '
            f'hx-get="{url}" hx-target="#drawer-root" hx-swap="innerHTML">Review #{deploy.pk}</a>'
            f'</td><td data-label="App / environment">{escape(deploy.environment.app.name)} / '
            f"{escape(deploy.environment.name)}</td>"
            f'<td data-label="Release">{escape(tag or deploy.image_ref)}</td>'
            f'<td data-label="Requested by">{escape(deploy.requester_name)}</td>'
            f'<td data-label="Reason">{escape(deploy.reason)}</td>'
            f'<td data-label="Expires">{ago(approval.expires_at)}</td>'
            f'<td data-label="Can be approved?">{verdict}</td>{why}</tr>'
        )
    return mark_safe("".join(html))  # every interpolated value is escaped above


@require_GET
@role_required(policy.can_view)
def queue(request: HttpRequest) -> HttpResponse:
    template = "approvals/queue.html"
    if _is_partial(request):
        template += "#pending-list"
    pending = approval_queue_for(request.user)
    context = {
        "queue": pending,
        "rows_for_you": queue_rows(pending.waiting_for_you, others=False),
        "rows_for_others": queue_rows(pending.waiting_for_others, others=True),
    }
    return render(request, template, context)


@require_GET
@role_required(policy.can_view)
def pending_count(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "components/_pending_count.html",
        {"pending_approvals_count": approval_count_waiting_for(request.user)},
    )


def _drawer_context(
    request: HttpRequest,
    approval: ApprovalRequest,
    form: DecisionForm,
    notice: str = "",
    bypass_form: BypassForm | None = None,
) -> dict[str, Any]:
    deploy = approval.deploy
    return {
        "facts": approval_drawer_facts(approval=approval, user=request.user),
        "form": form,
        "bypass_form": bypass_form or BypassForm(),
        "notice": notice,
        "as_drawer": _is_partial(request),
        "title": f"Deploy #{deploy.pk} · {deploy.environment}",
    }


@never_cache
@vary_on_headers("HX-Request")
@require_GET
@role_required(policy.can_view)
def drawer(
    request: HttpRequest, pk: int | None = None, deploy_pk: int | None = None
) -> HttpResponse:
    """By the request's id, or by its deploy's for pages that list deploys (no extra query)."""
    approval = approval_get(pk=pk, deploy_id=deploy_pk)
    template = "approvals/drawer.html" + ("#drawer" if _is_partial(request) else "")
    return render(request, template, _drawer_context(request, approval, DecisionForm()))


@never_cache
@require_POST
@role_required(policy.can_view)
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Viewers reach the service on purpose: their refusal is audited like any other."""
    approval = approval_get(pk=pk)
    form = DecisionForm(request.POST)
    partial = "#decision-form" if _is_partial(request) else ""
    if not form.is_valid():
        context = _drawer_context(request, approval, form)
        return render(request, "approvals/drawer.html" + partial, context, status=422)
    verdict = form.cleaned_data["decision"]
    try:
        approval_decide(
            request=approval,
            user=request.user,
            verdict=verdict,
            comment=form.cleaned_data["comment"],
            ip=client_ip(request),
        )
    except Refused as refusal:
        return _refused(request, pk, refusal, {"form": form})
    approval = approval_get(pk=pk)
    message = f"{'Approved' if verdict == 'approve' else 'Rejected'} deploy #{approval.deploy_id}."
    return _settled(request, approval, message=message, decision=verdict)


def _refused(
    request: HttpRequest, pk: int, refusal: Refused, context_extra: dict[str, Any]
) -> HttpResponse:
    """The drawer (or its form) again with the refusal's reason, at the refusal's status."""
    partial = "#decision-form" if _is_partial(request) else ""
    context = _drawer_context(request, approval_get(pk=pk), notice=refusal.message, **context_extra)
    status = refusal_status(refusal.code)
    if status == 409 and partial:
        # Someone else closed it (or it expired): every fact in the open drawer is stale,
        # so the whole drawer is redrawn, and the lists behind it catch up.
        response = render(request, "approvals/drawer.html#drawer", context, status=409)
        retarget(response, "#drawer-root")
        reswap(response, "innerHTML")
        trigger_client_event(response, APPROVAL_DECIDED, {"approval": pk, "decision": ""})
        return response
    response = render(request, "approvals/drawer.html" + partial, context, status=status)
    if refusal.code == "throttled":
        response["Retry-After"] = str(settings.LOGIN_THROTTLE_WINDOW_SECONDS)
    return response


def _settled(
    request: HttpRequest, approval: ApprovalRequest, *, message: str, decision: str
) -> HttpResponse:
    """Success: back to the queue without htmx; with it, a toast and the drawer closes."""
    if not _is_partial(request):
        messages.success(request, message)
        return redirect("approvals:queue")
    response = render(
        request,
        "approvals/drawer.html#decided",
        {
            "message": message,
            "pending_approvals_count": approval_count_waiting_for(request.user),
        },
    )
    reswap(response, "none")
    trigger_client_event(
        response,
        APPROVAL_DECIDED,
        {"approval": approval.pk, "deploy": approval.deploy_id, "decision": decision},
    )
    trigger_client_event(response, DRAWER_CLOSE, after="settle")
    return response


@never_cache
@require_POST
@role_required(policy.can_view)
def bypass(request: HttpRequest, pk: int) -> HttpResponse:
    """Break-glass. Anyone who may not bypass here reaches the service whatever they typed, so
    that their refusal (403) is audited; form errors (422) are for those who may."""
    approval = approval_get(pk=pk)
    form = BypassForm(request.POST)
    if not form.is_valid() and policy.can_bypass(request.user, approval.deploy.environment):
        partial = "#decision-form" if _is_partial(request) else ""
        context = _drawer_context(request, approval, DecisionForm(), bypass_form=form)
        return render(request, "approvals/drawer.html" + partial, context, status=422)
    try:
        approval_bypass(
            request=approval,
            user=request.user,
            reason=form.cleaned_data.get("reason", ""),
            password=form.cleaned_data.get("password", ""),
            ip=client_ip(request),
            http_request=request,
        )
    except Refused as refusal:
        return _refused(request, pk, refusal, {"form": DecisionForm(), "bypass_form": form})
    approval = approval_get(pk=pk)
    message = f"Approval bypassed: deploy #{approval.deploy_id} is queued."
    return _settled(request, approval, message=message, decision="bypass")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's 403 for a missing/bad CSRF token, with the attempt audited for signed-in users."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
        if match is not None and match.view_name in ("approvals:decide", "approvals:bypass"):
            pk = str(match.kwargs["pk"])
            record(
                actor=user,
                verb="approval.refused",
                target=Target(type="approvalrequest", id=pk, repr=f"Approval request #{pk}"),
                data={"reason": "csrf", "message": reason},
                ip=client_ip(request),
            )
        else:
            record(
                actor=user,
                verb="request.csrf_refused",
                data={"path": request.path, "method": request.method, "message": reason},
                ip=client_ip(request),
            )
    return django_csrf_failure(request, reason=reason)
