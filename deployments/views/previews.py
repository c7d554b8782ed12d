"""Previews: the list, one preview's page, and the actions (approve a fork, redeploy, wake,
destroy). Actions answer htmx with the table row and plain forms with a redirect and message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
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
from hotdash.permissions import client_ip, role_required

TERMINAL = {str(state) for state in Deploy.TERMINAL_STATES}


class ApproveForm(forms.Form):
    sha = forms.RegexField(regex=r"^[0-9a-f]{40}$", error_messages={"invalid": "Not a commit."})
    comment = forms.CharField(max_length=1000, required=False)


def _permissions(request: HttpRequest) -> dict[str, bool]:
    return {
        "can_act": policy.can_request_deploy(request.user),
        "can_approve": policy.can_approve(request.user),
    }


@require_GET
@role_required(policy.can_view)
def preview_list_page(request: HttpRequest) -> HttpResponse:
    page = preview_page(page=request.GET.get("page"))
    previews = list(page.object_list)
    template = "deployments/preview_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#preview-table"
    context = {
        "previews": previews,
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
    context = {
        "preview": preview_get(pk=pk),
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
