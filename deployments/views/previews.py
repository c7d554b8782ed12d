"""Previews: the list, one preview's page, and the actions (approve a fork, redeploy, wake,
destroy). Actions answer htmx with the table row and plain forms with a redirect and message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from html import escape
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import policy
from deployments.models import Deploy, Preview
from deployments.selectors.previews import preview_deploys, preview_get, preview_page
from deployments.services.previews import (
    COMMENT_MARKER,
    preview_approve,
    preview_destroy,
    preview_redeploy,
    preview_wake,
)
from hotdash.api import refusal_status
from hotdash.errors import Refused
from hotdash.integrations import APIError
from hotdash.links import outside_url
from hotdash.paths import object_url
from hotdash.permissions import client_ip, role_required
from hotdash.templatetags.times import ago

TERMINAL = {str(state) for state in Deploy.TERMINAL_STATES}


class ApproveForm(forms.Form):
    sha = forms.RegexField(regex=r"^[0-9a-f]{40}$", error_messages={"invalid": "Not a commit."})
    comment = forms.CharField(max_length=1000, required=False)


def _permissions(request: HttpRequest) -> dict[str, bool]:
    return {
        "can_act": policy.can_request_deploy(request.user),
        "can_approve": policy.can_approve(request.user),
    }


@dataclass(frozen=True)
class PreviewRow:
    """A row of the previews table: its cells as HTML, but for the held note and the actions
    (forms, kept in templates shared with the preview's page)."""

    preview: Preview
    lead: SafeString  # PR, title, author, branch
    state: SafeString  # components/_preview_state.html
    tail: SafeString  # URL, created, last deploy, secrets


class PreviewCells:
    """Builds PreviewRows, the URLs reversed once per table (see deployments.views.rows)."""

    def __init__(self) -> None:
        self._preview_url = partial(object_url, "deployments:preview-detail")
        self._deploy_url = partial(object_url, "deployments:deploy-detail")

    def __call__(self, preview: Preview) -> PreviewRow:
        marks = ' <span class="state state-pending">fork</span>' if preview.is_fork else ""
        marks += ' <span class="muted">draft</span>' if preview.is_draft else ""
        lead = (
            f'<td data-label="PR"><a href="{self._preview_url(preview.pk)}">'
            f"{escape(preview.app.name)} #{preview.pr_number}</a>{marks}</td>"
            f'<td data-label="Title">{escape(preview.pr_title)}</td>'
            f'<td data-label="Author">{escape(preview.pr_author)}</td>'
            f'<td data-label="Branch" class="mono">{escape(preview.branch)}</td>'
        )
        shown = "live" if preview.state == Preview.State.RUNNING else preview.state
        state = (
            f'<span class="state state-{escape(shown)}" '
            f'title="{escape(preview.state_description)}">'
            f"{escape(preview.get_state_display())}</span>"
        )
        url = ""
        hidden = (Preview.State.DESTROYED, Preview.State.AWAITING_APPROVAL)
        if preview.url and preview.state not in hidden:
            url = f'<a href="{escape(outside_url(preview.url))}" rel="noopener">'
            url += f"{escape(preview.url)}</a>"
        last = '<span class="muted">none</span>'
        if preview.last_deploy_id:
            last = (
                f'<a href="{self._deploy_url(preview.last_deploy_id)}">'
                f"#{preview.last_deploy_id}</a> "
                f'<span class="mono">{escape(preview.last_deploy_commit[:7])}</span> '
                f"{escape(preview.last_deploy_state)}, {ago(preview.last_deploy_at)}"
            )
        secrets = escape(", ".join(preview.secret_names))
        if not secrets:
            secrets = f'<span class="muted">none{" (fork)" if preview.is_fork else ""}</span>'
        tail = (
            f'<td data-label="URL">{url}</td>'
            f'<td data-label="Created">{ago(preview.created_at)}</td>'
            f'<td data-label="Last deploy">{last}</td>'
            f'<td data-label="Secrets from staging" class="mono">{secrets}</td>'
        )
        # Every interpolated value is escaped above.
        return PreviewRow(
            preview=preview, lead=mark_safe(lead), state=mark_safe(state), tail=mark_safe(tail)
        )


@require_GET
@role_required(policy.can_view)
def preview_list_page(request: HttpRequest) -> HttpResponse:
    page = preview_page(page=request.GET.get("page"))
    previews = list(page.object_list)
    row = PreviewCells()
    template = "deployments/preview_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#preview-table"
    context = {
        "rows": [row(preview) for preview in previews],
        "page": page,
        **_permissions(request),
        "preview_states": list(Preview.State),
        # The table refreshes itself while a preview is being created or deployed (and
        # stops once all are settled).
        "any_in_flight": any(
            preview.state == Preview.State.CREATING
            or (preview.last_deploy_state and preview.last_deploy_state not in TERMINAL)
            for preview in previews
        ),
    }
    return render(request, template, context)


@require_GET
@role_required(policy.can_view)
def preview_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    preview = preview_get(pk=pk)
    context = {
        "preview": preview,
        "deploys": preview_deploys(preview=preview),
        # The comment as posted, without the hidden marker HotDash finds it again by.
        "comment_text": preview.comment_body.removeprefix(COMMENT_MARKER).strip(),
        "preview_states": list(Preview.State),
    }
    return render(request, "deployments/preview_detail.html", {**context, **_permissions(request)})


def _act(
    request: HttpRequest, pk: int, action: Callable[[Preview], Any], done: str
) -> HttpResponse:
    """Run one preview action; answer htmx with the row (409 + message when refused, 403 when
    the actor may not)."""
    preview = preview_get(pk=pk)
    status, level, text = 200, messages.SUCCESS, done
    try:
        action(preview)
    except Refused as refusal:
        if refusal_status(refusal.code) == 403:
            raise PermissionDenied(refusal.message) from None
        status, level, text = 409, messages.ERROR, refusal.message
    except APIError as exc:
        status, level = 409, messages.ERROR
        text = f"{exc.provider} did not complete the request ({exc.status or 'no answer'}); "
        text += "nothing was recorded, try again."
    if not request.htmx:
        messages.add_message(request, level, text)
        if request.POST.get("from") == "detail":
            return redirect("deployments:preview-detail", pk=pk)
        return redirect("deployments:preview-list")
    preview = preview_get(pk=pk)
    context = {
        "preview": preview,
        "row": PreviewCells()(preview),
        **_permissions(request),
        "row_message": text,
        "row_error": status != 200,
    }
    return render(request, "deployments/preview_list.html#preview-row", context, status=status)


def _approve(request: HttpRequest, preview: Preview) -> None:
    form = ApproveForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(text)}" for name, text in form.errors.items())
        raise Refused("invalid_form", f"Nothing was approved ({errors}).")
    preview_approve(
        preview=preview,
        user=request.user,
        sha=form.cleaned_data["sha"],
        comment=form.cleaned_data["comment"],
        ip=client_ip(request),
    )


# Who may approve is decided (and a refusal audited) by the service, not by a decorator.
@require_POST
def preview_approve_action(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda preview: _approve(request, preview),
        "Approved: the preview app is being created for that commit, without secrets.",
    )


@require_POST
@role_required(policy.can_request_deploy)
def preview_redeploy_action(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda preview: preview_redeploy(preview=preview, user=request.user, ip=client_ip(request)),
        "Redeploy requested.",
    )


@require_POST
@role_required(policy.can_request_deploy)
def preview_wake_action(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda preview: preview_wake(preview=preview, user=request.user, ip=client_ip(request)),
        "Preview woken.",
    )


def _destroy(request: HttpRequest, preview: Preview) -> None:
    if preview.state == Preview.State.DESTROYED:
        raise Refused("preview_destroyed", "This preview is already destroyed.")
    preview_destroy(
        preview=preview,
        actor=request.user,
        reason=f"destroyed by {request.user.get_username()} from the Previews page",
        ip=client_ip(request),
    )


@require_http_methods(["GET", "POST"])
@role_required(policy.can_request_deploy)
def preview_destroy_action(request: HttpRequest, pk: int) -> HttpResponse:
    """GET (the Destroy button without JavaScript) asks for confirmation; POST destroys."""
    if request.method == "GET":
        preview = preview_get(pk=pk)
        context = {"preview": preview, "pending": preview_deploys(preview=preview, pending=True)}
        return render(request, "deployments/preview_destroy_confirm.html", context)
    return _act(request, pk, lambda preview: _destroy(request, preview), "Preview destroyed.")
