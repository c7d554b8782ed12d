"""The JSON API's shared plumbing: bearer-token auth, JSON bodies, one error shape.

Errors always look like ``{"error": {"code": "...", "message": "..."}}``. Each API module
exposes ``OPENAPI_PATHS`` (a dict of OpenAPI path items) that the schema view merges.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from deployments.services.tokens import api_token_authenticate

MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(status: int, code: str, message: str, **details: Any) -> JsonResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JsonResponse({"error": body}, status=status)


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object, or an ApiError saying exactly what is wrong with it."""
    if len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"Request body exceeds {MAX_BODY_BYTES} bytes.")
    try:
        data = json.loads(request.body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"Request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "Request body must be a JSON object.")
    return data


def require_fields(data: dict[str, Any], *names: str) -> None:
    missing = [name for name in names if data.get(name) in (None, "")]
    if missing:
        raise ApiError(422, "missing_fields", f"Missing required field(s): {', '.join(missing)}.")


def api_endpoint(
    *methods: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Authenticate ``Authorization: Bearer <token>``, allow ``methods``, map ApiError to JSON.

    CSRF does not apply: API requests carry no cookies, only the bearer token.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @login_not_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = error_response(
                    405, "method_not_allowed", f"Use {' or '.join(methods)} on this path."
                )
                response["Allow"] = ", ".join(methods)
                return response
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            user = api_token_authenticate(raw_token=token.strip()) if scheme == "Bearer" else None
            if user is None:
                response = error_response(
                    401,
                    "unauthenticated",
                    "Send a valid personal token: Authorization: Bearer <token>.",
                )
                response["WWW-Authenticate"] = 'Bearer realm="hotdash"'
                return response
            request.user = user
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message, **exc.details)

        return wrapped

    return decorator
