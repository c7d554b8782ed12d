from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from approvals import policy
from deployments.models import Deploy, Preview
from deployments.selectors.previews import preview_get, preview_list
from deployments.services.previews import (
    PreviewActionRefused,
    preview_destroy,
    preview_redeploy,
    preview_wake,
)
from hotdash.integrations import APIError
from hotdash.permissions import client_ip, role_required

TERMINAL = {str(state) for state in Deploy.TERMINAL_STATES}


@require_GET
@role_required(policy.can_view)
def preview_list_page(request: HttpRequest) -> HttpResponse:
    previews = list(preview_list())
    template = "deployments/preview_list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#preview-table"
    context = {
        "previews": previews,
        "can_act": policy.can_request_deploy(request.user),
        # Pull requests arrive from outside at any time: the table refreshes itself, faster
        # while a preview is being created or deployed.
        "any_in_flight": any(
            preview.state == Preview.State.CREATING
            or (preview.last_deploy_state and preview.last_deploy_state not in TERMINAL)
            for preview in previews
        ),
    }
    return render(request, template, context)


def _act(
    request: HttpRequest, pk: int, action: Callable[[Preview], Any], done: str
) -> HttpResponse:
    """Run one preview action; answer htmx with the row (409 + message when refused)."""
    preview = preview_get(pk=pk)
    status, level, text = 200, messages.SUCCESS, done
    try:
        action(preview)
    except PreviewActionRefused as exc:
        status, level, text = 409, messages.ERROR, str(exc)
    except APIError as exc:
        status, level = 409, messages.ERROR
        text = f"{exc.provider} did not complete the request ({exc.status or 'no answer'}); "
        text += "nothing was recorded, try again."
    if not request.htmx:
        messages.add_message(request, level, text)
        return redirect("deployments:preview-list")
    context = {
        "preview": preview_get(pk=pk),
        "can_act": True,
        "row_message": text,
        "row_error": status != 200,
    }
    return render(request, "deployments/preview_list.html#preview-row", context, status=status)


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
        raise PreviewActionRefused("This preview is already destroyed.")
    preview_destroy(
        preview=preview,
        actor=request.user,
        reason=f"destroyed by {request.user.get_username()} from the Previews page",
        ip=client_ip(request),
    )


@require_POST
@role_required(policy.can_request_deploy)
def preview_destroy_action(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, lambda preview: _destroy(request, preview), "Preview destroyed.")
