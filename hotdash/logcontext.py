"""Who and what a log line is about: request id, user, deploy, task.

Fields are bound in context variables (``bind``) by the request middleware and around each
Celery task; ``ContextFilter`` copies them onto every record and ``JsonFormatter`` writes a
record as one JSON object per line. The fields travel with task messages (``message_headers``
/ ``from_headers``), so the web request that approved a deploy and the worker lines that carry
it out share one request id.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

FIELDS = ("request_id", "user", "deploy_id", "app", "environment", "task_id")
# The fields a task message carries on to the worker (the task binds its own task_id).
CARRIED = ("request_id", "user", "deploy_id", "app", "environment")
HEADER = "hotdash_log_context"
REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_EMPTY: dict[str, Any] = {}  # never mutated: each bind sets a new dict
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("hotdash_log_context")


def current() -> dict[str, Any]:
    """The fields bound now."""
    return dict(_context.get(_EMPTY))


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (those that are not None) to every log line inside the block."""
    token = enter(**fields)
    try:
        yield
    finally:
        leave(token)


def enter(**fields: Any) -> contextvars.Token:
    """``bind`` for code that cannot hold a block open (signal pairs): undo with ``leave``."""
    return _context.set(_context.get(_EMPTY) | {k: v for k, v in fields.items() if v is not None})


def leave(token: contextvars.Token) -> None:
    _context.reset(token)


def message_headers() -> dict[str, Any]:
    """The headers a task message carries so that the worker's lines share the fields."""
    carried = {k: v for k, v in _context.get(_EMPTY).items() if k in CARRIED}
    return {HEADER: carried} if carried else {}


def from_headers(headers: dict[str, Any] | None) -> dict[str, Any]:
    """The carried fields out of a task message's headers (unknown keys dropped)."""
    carried = (headers or {}).get(HEADER) or {}
    return {k: v for k, v in carried.items() if k in CARRIED} if isinstance(carried, dict) else {}


def request_id_of(request: HttpRequest) -> str:
    """The caller's X-Request-ID when it is a plain token, else a fresh one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class RequestContextMiddleware:
    """Binds the request id (echoed in the response) for all of the request's log lines, and
    the signed-in user once authentication has run (before the view). Goes first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_of(request)
        with bind(request_id=request_id):
            try:
                response = self.get_response(request)
            finally:
                token = getattr(request, "_log_user_token", None)
                if token is not None:
                    leave(token)
        response[REQUEST_ID_HEADER] = request_id
        return response

    def process_view(self, request: HttpRequest, *_: Any) -> None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            request._log_user_token = enter(user=user.get_username())


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (as attributes of the same names)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get(_EMPTY).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound fields, and the
    traceback if any. JSON escapes every control character, so a line stays one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)
