"""Response and log hardening: the Content-Security-Policy header, single-line log records."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        f"style-src 'self' {_sha256_source(HTMX_INDICATOR_CSS)}",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
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
