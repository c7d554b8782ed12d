"""Sign-in throttling: password guessing and spraying are refused early.

Failures are counted in Django's cache (shared between processes when CACHE_URL points at
Redis) in fixed windows of LOGIN_THROTTLE_WINDOW_SECONDS that start at the first failure:

* per username (from any address): LOGIN_THROTTLE_USERNAME_LIMIT failures lock that username;
  a successful sign-in clears its count;
* per client address (hotdash.permissions.client_ip, so a spoofed X-Forwarded-For counts for
  nothing): LOGIN_THROTTLE_IP_LIMIT failures lock the address; success does not clear it, so
  one valid account cannot launder a spray. Failed API tokens have their own per-address count,
  which refuses further failing tokens from the address but never a valid one (hotdash.api).

A locked attempt is answered 429 with a generic message before any password is checked, and
each lockout is audited once per window.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse

from approvals.audit import record
from hotdash.permissions import client_ip
from hotdash.security import sign_in_policy

THROTTLED_MESSAGE = "Too many failed sign-in attempts. Try again later."


def _key(scope: str, value: str) -> str:
    # Hashed: usernames and addresses may hold characters a cache key must not.
    return f"throttle:{scope}:{hashlib.sha256(value.encode()).hexdigest()}"


def _scopes(request: HttpRequest | None, username: str | None, ip_scope: str) -> list[str]:
    keys = []
    if username is not None:
        keys.append(_key("username", username.strip().lower()))
    ip = client_ip(request) if request is not None else None
    if ip:
        keys.append(_key(ip_scope, ip))
    return keys


def _limit(key: str) -> int:
    return (
        settings.LOGIN_THROTTLE_USERNAME_LIMIT
        if key.startswith("throttle:username:")
        else settings.LOGIN_THROTTLE_IP_LIMIT
    )


def failure_count(
    request: HttpRequest | None, *, username: str | None = None, ip_scope: str = "ip"
) -> None:
    """Count one failed password (or token, with ``ip_scope="api-ip"``) check."""
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    for key in _scopes(request, username, ip_scope):
        cache.add(key, 0, timeout=window)  # the window starts at the first failure
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr: this failure opens a new window
            cache.add(key, 1, timeout=window)


def success_reset(*, username: str) -> None:
    cache.delete(_key("username", username.strip().lower()))


def locked(
    request: HttpRequest | None, *, username: str | None = None, ip_scope: str = "ip"
) -> bool:
    """Whether this attempt must be refused; the first refusal of a window is audited."""
    over = [key for key in _scopes(request, username, ip_scope) if cache.get(key, 0) >= _limit(key)]
    for key in over:
        if cache.add(f"{key}:audited", True, timeout=settings.LOGIN_THROTTLE_WINDOW_SECONDS):
            record(
                actor=None,
                verb="auth.throttled",
                data={
                    "by": "username" if key.startswith("throttle:username:") else ip_scope,
                    "username": (username or "")[:150],
                },
                ip=client_ip(request) if request is not None else None,
            )
    return bool(over)


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {**AuthenticationForm.error_messages, "throttled": THROTTLED_MESSAGE}

    def clean(self) -> dict[str, Any]:
        if locked(self.request, username=self.data.get("username", "")):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        return super().clean()


class ThrottledLoginView(LoginView):
    """The sign-in page; a throttled attempt gets 429 and the password is never checked."""

    form_class = ThrottledAuthenticationForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # "Sign in with GitHub" is offered when an OAuth client is configured.
        return {
            **super().get_context_data(**kwargs),
            "github_sign_in": bool(settings.GITHUB_OAUTH_CLIENT_ID),
        }

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **kwargs)
        if context["github_sign_in"]:
            response.headers["Content-Security-Policy"] = sign_in_policy()
        return response

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, code="throttled"):
            response.status_code = 429
            response["Retry-After"] = str(settings.LOGIN_THROTTLE_WINDOW_SECONDS)
        return response
