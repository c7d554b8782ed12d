"""The JSON API's shared plumbing: bearer-token auth, JSON bodies, one error shape.

Errors always look like ``{"error": {"code": "...", "message": "..."}}``. Each API module
exposes ``OPENAPI_PATHS`` (a dict of OpenAPI path items) that the schema view merges; their
operations list their errors through :func:`error_responses`, so every status and code the
API can answer is in the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from approvals import auth
from deployments.services.tokens import api_token_authenticate
from hotdash import input_gate
from hotdash.errors import Refused, error_response

MAX_BODY_BYTES = 64 * 1024

# The HTTP status of each refusal code a service raises (hotdash.errors.Refused), for the API
# and the pages alike. Any other code is a request that cannot be carried out as asked: 422.
REFUSAL_STATUS = {
    # the actor's role or the environment's policy does not allow it
    "forbidden": 403,
    "not_approver": 403,
    "self_approval": 403,
    "commit_author": 403,
    "not_admin": 403,
    "bypass_disabled": 403,
    "reauth_failed": 403,
    # the state of things does not allow it now
    "environment_locked": 409,
    "freeze_window": 409,
    "checks_failing": 409,
    "promotion_required": 409,
    "no_op_unconfirmed": 409,
    "already_decided": 409,
    "closed": 409,
    "expired": 409,
    "changed": 409,
    "build_conflict": 409,
    "not_queueable": 409,
    "not_cancellable": 409,
    "not_running": 409,
    "finished": 409,
    "preview_destroyed": 409,
    "preview_held": 409,
    "preview_not_held": 409,
    "head_moved": 409,
    "no_build": 409,
    "not_in_trouble": 409,
    "no_rollback_target": 409,
    "already_acknowledged": 409,
    "throttled": 429,
    "upstream_error": 502,
}


def refusal_status(code: str) -> int:
    return REFUSAL_STATUS.get(code, 422)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object, or an ApiError saying exactly what is wrong with it (through
    the input gate: nesting capped, every string checked as text)."""
    if len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"Request body exceeds {MAX_BODY_BYTES} bytes.")
    try:
        data, _ = input_gate.parse_json(request.body or b"{}")
    except input_gate.InvalidJson as exc:
        raise ApiError(400, "invalid_json", f"Request body is not valid JSON: {exc}.") from None
    except input_gate.InputRefused as refused:
        raise ApiError(400, "invalid_text", str(refused), field=refused.field) from None
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
    """Authenticate ``Authorization: Bearer <token>``, allow ``methods``, map ApiError and a
    service's Refused (at its REFUSAL_STATUS) to JSON.

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
            presented = scheme == "Bearer" and bool(token.strip())
            user = api_token_authenticate(raw_token=token.strip()) if presented else None
            # The address lockout refuses failing tokens only: a valid token is never refused
            # because of someone else's bad ones from a shared address (tokens are 256-bit
            # random secrets, so checking one from a locked address cannot help a guesser).
            if user is None and presented:
                if auth.locked(request, ip_scope="api-ip"):
                    response = error_response(
                        429,
                        "throttled",
                        "Too many failed token checks from this address; try later.",
                    )
                    response["Retry-After"] = str(settings.LOGIN_THROTTLE_WINDOW_SECONDS)
                    return response
                auth.failure_count(request, ip_scope="api-ip")
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
            except Refused as refusal:
                status = refusal_status(refusal.code)
                return error_response(status, refusal.code, refusal.message, **refusal.details)

        return wrapped

    return decorator


# --- OpenAPI ---------------------------------------------------------------------------------


def _error_schema(codes: list[str]) -> dict[str, Any]:
    """An Error whose code is one of ``codes``."""
    code = {"type": "object", "properties": {"code": {"enum": sorted(codes)}}}
    return {
        "allOf": [
            {"$ref": "#/components/schemas/Error"},
            {"type": "object", "properties": {"error": code}},
        ]
    }


def _error_response(description: str, codes: list[str], **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _error_schema(codes)}},
    }
    if headers:
        response["headers"] = {
            name: {"required": True, "description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


_INVALID_TEXT = "a NUL character or a lone UTF-16 surrogate (`details.field` names where)"
# What api_endpoint, the input gate and json_body answer, the same on every operation (or
# every one with a body).
_PLUMBING_RESPONSES = {
    "Unauthenticated": (
        401,
        _error_response(
            "`unauthenticated`: no `Authorization: Bearer <token>` header, or the token is "
            "unknown or revoked",
            ["unauthenticated"],
            **{"WWW-Authenticate": 'Bearer realm="hotdash"'},
        ),
    ),
    "Throttled": (
        429,
        _error_response(
            "`throttled`: too many failed token checks from this address; every failing token "
            "from it is refused until the window passes (a valid token is still accepted)",
            ["throttled"],
            **{"Retry-After": "Seconds until failing tokens are counted afresh"},
        ),
    ),
    "MethodNotAllowed": (
        405,
        _error_response(
            "`method_not_allowed`: another HTTP method was used on this path",
            ["method_not_allowed"],
            Allow="The methods this path takes",
        ),
    ),
    "InvalidText": (
        400,
        _error_response(
            f"`invalid_text`: {_INVALID_TEXT} in a query-string parameter", ["invalid_text"]
        ),
    ),
}
_BODY_RESPONSES = {
    "InvalidBody": (
        400,
        _error_response(
            "`invalid_json`: the body is not UTF-8 JSON, not a JSON object, nests deeper than "
            f"{input_gate.MAX_JSON_DEPTH} levels, or has a number outside 64 bits or not "
            f"finite; `invalid_text`: {_INVALID_TEXT} in the body or a query-string parameter",
            ["invalid_json", "invalid_text"],
        ),
    ),
    "BodyTooLarge": (
        413,
        _error_response(
            f"`body_too_large`: the body exceeds {MAX_BODY_BYTES} bytes", ["body_too_large"]
        ),
    ),
}

OPENAPI_COMPONENTS: dict[str, Any] = {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                }
            },
        }
    },
    "responses": {
        name: response for name, (_, response) in {**_PLUMBING_RESPONSES, **_BODY_RESPONSES}.items()
    },
}


def error_responses(
    errors: dict[int, dict[str, str]], *, body: bool = False
) -> dict[str, dict[str, Any]]:
    """An operation's error responses: ``errors`` maps each status the view answers to its
    codes and when each is sent; 400, 401, 405 and 429 always apply, 413 and the body's 400
    codes when ``body`` (the operation reads a JSON body)."""
    shared = {**_PLUMBING_RESPONSES, **(_BODY_RESPONSES if body else {})}
    responses = {
        str(status): {"$ref": f"#/components/responses/{name}"}
        for name, (status, _) in shared.items()
    }
    for status, codes in errors.items():
        description = "; ".join(f"`{code}`: {when}" for code, when in codes.items())
        responses[str(status)] = _error_response(description, list(codes))
    return dict(sorted(responses.items()))
