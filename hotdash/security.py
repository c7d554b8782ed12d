"""Response and log hardening: the Content-Security-Policy header, private caching of signed-in
answers, single-line log records."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

# The one <style> element htmx inserts (its request-indicator rules, htmx 2.x), admitted by hash.
HTMX_INDICATOR_CSS = (
    ".htmx-indicator{opacity:0;visibility: hidden} "
    ".htmx-request .htmx-indicator, .htmx-request.htmx-indicator"
    "{opacity:1;visibility: visible;transition: opacity 200ms ease-in}"
)


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# No inline script anywhere (htmx and drawer.js are static files) and no eval: an injected
# hx-on or hx-trigger condition stays inert. Style attributes carry progress-bar widths.
def content_security_policy(*, form_targets: tuple[str, ...] = ()) -> str:
    """The policy; ``form_targets`` are other origins a form's answer may redirect to."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            f"style-src 'self' {_sha256_source(HTMX_INDICATOR_CSS)}",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            " ".join(["form-action 'self'", *form_targets]),
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()


def sign_in_policy() -> str:
    """The policy of the sign-in page: its "Sign in with GitHub" form is answered with a
    redirect to GitHub's authorize page, which browsers check against form-action."""
    from django.conf import settings

    web = urlsplit(settings.GITHUB_WEB_URL)
    return content_security_policy(form_targets=(f"{web.scheme}://{web.netloc}",))


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class PrivateCacheMiddleware:
    """An answer to a signed-in user (a session or an API token) is theirs alone: no shared
    cache may keep it, and no browser may store it for the next person at the keyboard."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r"}


class SingleLineFormatter(logging.Formatter):
    """Every record on one line: line breaks (also inside tracebacks and in user-supplied
    values) become ``\\n``/``\\r`` and other control characters (ANSI escapes) ``\\xNN``, so
    text a user typed cannot start a forged log line or repaint the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return _CONTROL.sub(_escape, super().format(record))


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


# Settings whose values are secrets: masked wherever they turn up in log text or error reports.
SECRET_SETTINGS = (
    "FLY_API_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_WEBHOOK_SECRET",
    "SECRET_KEY",
    "AUDIT_HMAC_KEY",
    "DEMO_PASSWORD",
    "METRICS_TOKEN",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_URL",
)
REDACTED = "[redacted]"
# Credential-carrying headers, as "Name: value", "name=value" or a repr'd "'name': 'value'".
_CREDENTIAL_HEADER = re.compile(
    r"(?i)(\b(?:proxy-)?authorization|\bcookie|x-hub-signature-256|x-hotdash-signature"
    r"|fly-machine-lease-nonce)(['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+"
)
_AUTH_SCHEME = re.compile(r"\b(Bearer|FlyV1)\s+[A-Za-z0-9._~+/=:-]{8,}")


def redact(text: str) -> str:
    """``text`` with credential headers, bearer-style tokens and the configured secret values
    replaced by ``[redacted]``."""
    from django.conf import settings

    for name in SECRET_SETTINGS:
        value = getattr(settings, name, "")
        if value:
            text = text.replace(value, REDACTED)
    text = _CREDENTIAL_HEADER.sub(rf"\1\2{REDACTED}", text)
    return _AUTH_SCHEME.sub(rf"\1 {REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    """Masks secrets in a record's message, traceback and stack (see :func:`redact`).

    It rewrites the record itself, so handlers after the first one it runs on (every handler
    in LOGGING has it) see the masked text too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: logging reports it, unformatted
            return True
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
