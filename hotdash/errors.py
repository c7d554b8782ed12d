"""The one exception a service raises when it will not do what was asked, and the API's one
error shape."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class Refused(Exception):  # noqa: N818 - a refusal is an answer, not a failure
    """A request that was refused: nothing it asked for was changed (the service may still
    have committed the audit event that says so).

    ``code`` is short, stable and machine-readable (``environment_locked``, ``not_approver``);
    ``message`` is a sentence for the person who asked; ``details`` are facts for machines
    (JSON-serialisable). How a code is answered over HTTP is decided at the edge
    (``hotdash.api.refusal_status``), never by the service.
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


def error_response(status: int, code: str, message: str, **details: Any) -> JsonResponse:
    """The API's error shape: ``{"error": {"code", "message", "details"?}}``."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JsonResponse({"error": body}, status=status)
