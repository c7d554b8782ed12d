"""``POST /webhooks/github``: verify, store once, answer fast; a worker does the rest.

No cookies and no CSRF token: the HMAC signature over the raw body is the authentication,
and it fails closed (no secret configured refuses every delivery). ``GitHubWebhookMiddleware``
answers it near the top of the middleware stack (see the class).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from deployments.services.webhooks import (
    HANDLED_EVENTS,
    signature_valid,
    webhook_delivery_receive,
    webhook_refused_record,
)
from hotdash import input_gate
from hotdash.permissions import client_ip


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The raw body, or None when it is over ``limit`` bytes. Reads the stream directly so that
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) does not refuse GitHub's 25 MB first."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


@csrf_exempt
@login_not_required
@require_POST
@sensitive_variables("secret")
def github_webhook(request: HttpRequest) -> HttpResponse:
    event = request.headers.get("X-GitHub-Event", "")[:50]
    delivery_id = request.headers.get("X-GitHub-Delivery", "")
    try:  # before anything is recorded: a refusal's audit event stores both
        input_gate.check_text("X-GitHub-Event", event)
        input_gate.check_text("X-GitHub-Delivery", delivery_id)
    except input_gate.InputRefused as refused:
        return _error(400, "invalid_text", str(refused))
    ip = client_ip(request)
    secret = settings.GITHUB_WEBHOOK_SECRET
    if not secret:
        webhook_refused_record(event=event, delivery_id=delivery_id, reason="no_secret", ip=ip)
        return _error(
            503, "not_configured", "GITHUB_WEBHOOK_SECRET is not set: every delivery is refused."
        )
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    body = _read_body(request, limit)
    if body is None:
        return _error(413, "body_too_large", f"Deliveries over {limit} bytes are refused.")
    if not signature_valid(
        secret=secret, body=body, header=request.headers.get("X-Hub-Signature-256")
    ):
        present = "X-Hub-Signature-256" in request.headers
        reason = "bad_signature" if present else "missing_signature"
        webhook_refused_record(event=event, delivery_id=delivery_id, reason=reason, ip=ip)
        return _error(401, "bad_signature", "X-Hub-Signature-256 is missing or does not match.")
    if not event or not delivery_id or len(delivery_id) > 100:
        return _error(
            400,
            "missing_headers",
            "X-GitHub-Event and X-GitHub-Delivery (at most 100 characters) are required.",
        )
    try:
        # Signed by GitHub: a NUL or lone surrogate in it is kept, escaped, not refused.
        payload, escaped = input_gate.parse_json(body, escape=True)
    except input_gate.InvalidJson as exc:
        return _error(400, "invalid_json", f"The body is not valid JSON: {exc}.")
    if not isinstance(payload, dict):
        return _error(400, "invalid_json", "The body must be a JSON object.")
    if event == "ping":
        return JsonResponse({"status": "pong", "zen": str(payload.get("zen", ""))[:200]})
    if event not in HANDLED_EVENTS:
        return HttpResponse(status=204)
    if not webhook_delivery_receive(
        delivery_id=delivery_id, event=event, payload=payload, escaped=escaped, ip=ip
    ):
        return JsonResponse({"status": "duplicate", "delivery": delivery_id})
    return JsonResponse({"status": "queued", "delivery": delivery_id}, status=202)


class GitHubWebhookMiddleware:
    """Hands ``/webhooks/github`` to its view right after the request id and SecurityMiddleware
    (plain HTTP redirected, nosniff), with the host check (ALLOWED_HOSTS, as CommonMiddleware
    makes it) and the input gate's query-string check made here, skipping the rest.

    The signature is the delivery's only authentication and the answer is a short JSON
    document for GitHub, not a page: the page headers (CSP, frame options), static files,
    the session, CSRF, the session user, login enforcement, messages, the user's time zone,
    htmx and URL resolution were a third of the endpoint's CPU per request for nothing, at up
    to 1,000 deliveries a second. Goes right after SecurityMiddleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.path = reverse("github-webhook")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != self.path:
            return self.get_response(request)
        request.get_host()  # DisallowedHost: answered 400, as for any page
        try:
            input_gate.check_params(request.GET)
        except input_gate.InputRefused as refused:
            return input_gate.refused_response(request, refused)
        return github_webhook(request)
