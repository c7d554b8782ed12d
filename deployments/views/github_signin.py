"""Sign in with GitHub: the OAuth web flow's two ends (services/github_accounts.py does the rest).

The flow starts with a POST from the sign-in page (so another site cannot start it for you);
its ``state`` is a fresh random value kept in the session and spent by the callback, which
refuses any callback it did not start (login CSRF).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from approvals.auth import ThrottledAuthenticationForm
from deployments.services.github_accounts import github_sign_in
from hotdash.errors import Refused
from hotdash.integrations.github_oauth import authorize_url
from hotdash.permissions import client_ip
from hotdash.security import sign_in_policy

SESSION_KEY = "github_oauth"


def _enabled() -> None:
    if not settings.GITHUB_OAUTH_CLIENT_ID:
        raise Http404("Sign in with GitHub is not configured.")


def _redirect_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("github-sign-in-callback"))


def _safe_next(request: HttpRequest, candidate: str) -> str:
    allowed = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return candidate if candidate and allowed else reverse("overview")


def _sign_in_page(request: HttpRequest, message: str, status: int) -> HttpResponse:
    context = {
        "form": ThrottledAuthenticationForm(request),
        "github_error": message,
        "github_sign_in": True,
    }
    response = render(request, "registration/login.html", context, status=status)
    response.headers["Content-Security-Policy"] = sign_in_policy()
    return response


@login_not_required
@never_cache
@require_POST
def github_sign_in_start(request: HttpRequest) -> HttpResponse:
    _enabled()
    state = secrets.token_urlsafe(32)
    request.session[SESSION_KEY] = {
        "state": state,
        "next": _safe_next(request, request.POST.get("next", "")),
    }
    return redirect(authorize_url(state=state, redirect_uri=_redirect_uri(request)))


@login_not_required
@never_cache
@require_GET
def github_sign_in_callback(request: HttpRequest) -> HttpResponse:
    _enabled()
    started = request.session.pop(SESSION_KEY, None)
    state = request.GET.get("state", "")
    if not started or not state or not constant_time_compare(state, started["state"]):
        return _sign_in_page(
            request,
            "This GitHub sign-in was not started from this browser, or was already used. "
            "Sign in again.",
            400,
        )
    if request.GET.get("error"):
        return _sign_in_page(request, "GitHub sign-in was cancelled; nothing changed.", 400)
    code = request.GET.get("code", "")
    if not code:
        return _sign_in_page(request, "GitHub sent no sign-in code back. Sign in again.", 400)
    try:
        user = github_sign_in(code=code, redirect_uri=_redirect_uri(request), ip=client_ip(request))
    except Refused as refused:
        status = 502 if refused.code == "upstream_error" else 403
        return _sign_in_page(request, refused.message, status)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect(started["next"])
