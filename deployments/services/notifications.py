"""Outgoing notifications: one Slack-compatible, HMAC-signed webhook per app.

``notification_send`` stores a Notification row in the caller's transaction and sends its
delivery task on commit; ``notification_deliver`` POSTs it once and says when to try again.
Every attempt is written to the row (``attempts`` and a line in ``last_error``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments.models import Deploy, Notification

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-HotDash-Signature"
EVENTS = {
    "approval.requested": "Approval requested",
    "approval.approved": "Approved",
    "approval.rejected": "Rejected",
    "approval.expired": "Approval expired",
    "deploy.succeeded": "Deploy succeeded",
    "deploy.failed": "Deploy failed",
    "deploy.auto_rolled_back": "Automatic rollback started",
}


def sign(body: bytes, secret: str) -> str:
    """The X-HotDash-Signature value: ``sha256=`` + hex HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _payload(deploy: Deploy, event: str, detail: str) -> dict:
    env = deploy.environment
    what = deploy.release.tag if deploy.release else deploy.image_ref
    headline = f"{EVENTS[event]}: {env.app.name} {what} → {env.name} (deploy #{deploy.pk})"
    lines = [headline]
    if detail:
        lines.append(detail)
    elif deploy.error and event in ("deploy.failed", "deploy.auto_rolled_back"):
        lines.append(deploy.error)
    if deploy.kind == Deploy.Kind.AUTO_ROLLBACK and deploy.rollback_of_id:
        lines.append(f"Rolling back deploy #{deploy.rollback_of_id} to {deploy.image_ref}.")
    text = "\n".join(lines)
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"requested by {deploy.requester_name}"},
                    {"type": "mrkdwn", "text": f"state {deploy.state}"},
                ],
            },
        ],
        "event": event,
        "deploy": {
            "id": deploy.pk,
            "app": env.app.name,
            "environment": env.name,
            "kind": deploy.kind,
            "state": deploy.state,
            "release": deploy.release.tag if deploy.release else "",
            "image_ref": deploy.image_ref,
        },
    }


def notification_send(*, deploy: Deploy, event: str, detail: str = "") -> Notification | None:
    """Queue a notification of ``event`` about ``deploy`` to its app's webhook, if it has one.

    Call inside the transaction of the change it announces; delivery starts after commit.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}; one of {', '.join(EVENTS)}")
    app = deploy.environment.app
    if not app.notification_webhook_url:
        return None
    notification = Notification.objects.create(
        app=app, deploy=deploy, event=event, payload=_payload(deploy, event, detail)
    )
    transaction.on_commit(lambda: _send_task(notification.pk, countdown=None))
    return notification


def _send_task(notification_id: int, *, countdown: float | None) -> None:
    from deployments.tasks.notifications import notification_deliver

    try:
        notification_deliver.apply_async(args=[notification_id], countdown=countdown)
    except Exception:  # noqa: BLE001 - broker down; the row stays pending and is listed on /ops
        log.warning("could not queue delivery of notification %s", notification_id)


def notification_deliver(*, notification_id: int) -> float | None:
    """Try one delivery. Returns seconds until the next try, or None when done (delivered,
    given up, or already handled)."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update()
            .select_related("app")
            .filter(pk=notification_id, state=Notification.State.PENDING)
            .first()
        )
        if notification is None:
            return None
        notification.attempts += 1
        attempt = notification.attempts
        notification.save(update_fields=["attempts"])
    app = notification.app
    body = json.dumps(notification.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "hotdash-notifications",
        SIGNATURE_HEADER: sign(body, app.notification_webhook_secret),
    }
    error = ""
    try:
        with httpx.Client(timeout=settings.NOTIFICATION_TIMEOUT_SECONDS) as client:
            response = client.post(app.notification_webhook_url, content=body, headers=headers)
        if not response.is_success:
            error = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    now = timezone.now()
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        if not error:
            notification.state = Notification.State.DELIVERED
            notification.delivered_at = now
            notification.last_error += f"attempt {attempt} at {now.isoformat()}: delivered\n"
            notification.save(update_fields=["state", "delivered_at", "last_error"])
            return None
        notification.last_error += f"attempt {attempt} at {now.isoformat()}: {error}\n"
        gave_up = attempt >= settings.NOTIFICATION_MAX_ATTEMPTS
        if gave_up:
            notification.state = Notification.State.FAILED
        notification.save(update_fields=["state", "last_error"])
    log.warning("notification %s attempt %s failed: %s", notification_id, attempt, error)
    return None if gave_up else min(300.0, 2.0**attempt)


def notification_retry(*, notification_id: int, countdown: float) -> None:
    """Send the delivery task again after ``countdown`` seconds."""
    _send_task(notification_id, countdown=countdown)
