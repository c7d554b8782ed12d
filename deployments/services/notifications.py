"""Outgoing notifications: one Slack-compatible, HMAC-signed webhook per app, and e-mails to
people (requesters, eligible approvers, admins), each as they chose on their profile.

``notification_send`` stores a Notification row in the caller's transaction and sends its
delivery task on commit; ``notification_deliver`` POSTs (or e-mails) it once and says when to
try again. An e-mail is stored once per ``dedup_key`` and recipient, so an event announced twice
(a sweep running again, a retried task) reaches each person once.
Every attempt is written to the row (``attempts`` and a line in ``last_error``). Each task
message names the attempt it is for, so a duplicate message never makes a second POST, and
``notification_resend_stuck`` (beat) re-sends rows whose message or worker was lost.
Nothing is sent unsigned: an app without a signing secret gets its notifications marked
failed, not sent.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from approvals import policy
from approvals.audit import record
from approvals.models import ApprovalRequest
from approvals.selectors import approver_candidates, users_holding
from deployments import task_names
from deployments.models import App, Deploy, EmailPreference, Notification
from deployments.selectors.notifications import email_muted_events
from deployments.selectors.ops import webhook_host
from hotdash import queue
from hotdash.errors import Refused
from hotdash.integrations.http import tls_context

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-HotDash-Signature"
EVENTS = {
    "approval.requested": "Approval requested",
    "approval.reminder": "Approval still waiting",
    "approval.approved": "Approved",
    "approval.rejected": "Rejected",
    "approval.expired": "Approval expired",
    "approval.bypassed": "Approval bypassed (break-glass)",
    "deploy.override": "Gate overridden by an admin",
    "deploy.succeeded": "Deploy succeeded",
    "deploy.failed": "Deploy failed",
    "deploy.auto_rolled_back": "Automatic rollback started",
    "rollback.emergency": "Emergency rollback",
    "backup.failed": "Backup drill failed",
    "compliance.failing": "Compliance check failing",
    "compliance.fixed": "Compliance check fixed",
    "environment.down": "Environment down",
    "environment.recovered": "Environment recovered",
    "alert.raised": "HotDash alert",
    "alert.cleared": "HotDash alert cleared",
}
# A pending notification this long past its next_attempt_at lost its task message (broker down
# at commit, a purged queue) or the worker running its attempt: the sweep sends it again.
RESEND_AFTER_SECONDS = 120


@sensitive_variables("secret")
def sign(body: bytes, secret: str) -> str:
    """The X-HotDash-Signature value: ``sha256=`` + hex HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_escape(text: str) -> str:
    """Text shown as typed in Slack: ``&``, ``<`` and ``>`` are its control characters
    (``<!channel>``, ``<https://evil|click>``), so they become entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _payload(deploy: Deploy, event: str, detail: str) -> dict:
    """The Slack message. Names, tags, reasons, comments and errors come from users and
    upstreams: every text field is escaped whole (the message itself uses no markup)."""
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
    context = [f"requested by {deploy.requester_name}", f"state {deploy.state}"]
    return _message(event, lines, context) | {
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


def _message(event: str, lines: list[str], context: list[str]) -> dict:
    """A Slack message: the first line is its header. Every text is escaped whole."""
    text = slack_escape("\n".join(lines))
    return {
        "text": text,
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": slack_escape(lines[0][:150])},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": slack_escape(item)} for item in context],
            },
        ],
        "event": event,
    }


def _check_event(event: str) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}; one of {', '.join(EVENTS)}")


# Who is e-mailed about each event (each person may mute any of them on /profile/).
REQUESTER_EVENTS = (
    "approval.approved",
    "approval.rejected",
    "approval.expired",
    "deploy.succeeded",
    "deploy.failed",
    "deploy.auto_rolled_back",
)
APPROVER_EVENTS = ("approval.requested", "approval.reminder")
ADMIN_EVENTS = (
    "environment.down",
    "environment.recovered",
    "compliance.failing",
    "compliance.fixed",
    "backup.failed",
    "alert.raised",
    "alert.cleared",
)
EMAIL_EVENTS = REQUESTER_EVENTS + APPROVER_EVENTS + ADMIN_EVENTS
# What each e-mailed event means to its reader, as /profile/ offers it.
EMAIL_EVENT_CHOICES = {
    "approval.approved": "My deploy was approved",
    "approval.rejected": "My deploy was rejected",
    "approval.expired": "My deploy's approval request expired",
    "deploy.succeeded": "My deploy succeeded",
    "deploy.failed": "My deploy failed",
    "deploy.auto_rolled_back": "My deploy was rolled back automatically",
    "approval.requested": "A deploy I may approve was requested",
    "approval.reminder": "A request I may approve is half-way to expiring",
    "environment.down": "An environment went down",
    "environment.recovered": "An environment recovered",
    "compliance.failing": "A compliance check started failing",
    "compliance.fixed": "A compliance check was fixed",
    "backup.failed": "A backup drill failed",
    "alert.raised": "An operational alert was raised (workers, audit chain, webhooks)",
    "alert.cleared": "An operational alert cleared",
}


def email_events_for(user: Any) -> tuple[str, ...]:
    """The events ``user`` can be e-mailed about, given their role."""
    events = REQUESTER_EVENTS if policy.can_request_deploy(user) else ()
    if policy.can_approve(user):
        events += APPROVER_EVENTS
    if policy.can_administer(user):
        events += ADMIN_EVENTS
    return events


def email_preference_set(
    *, user: Any, wanted: list[str], ip: str | None = None
) -> EmailPreference | None:
    """Record which of the events offered to ``user`` (``email_events_for``) e-mail them: the
    others are muted. Choices about events outside their role are kept as they were. Nothing
    is written (or returned, without a row yet) when nothing changes."""
    offered = email_events_for(user)
    unknown = sorted(set(wanted) - set(offered))
    if unknown:
        raise Refused(
            "unknown_email_event",
            f"These are not e-mail events you can choose: {', '.join(unknown)}.",
        )
    with transaction.atomic():
        preference = EmailPreference.objects.select_for_update().filter(user=user).first()
        before = set(preference.muted_events) if preference else set()
        muted = (before - set(offered)) | (set(offered) - set(wanted))
        if muted == before:
            return preference
        preference = preference or EmailPreference(user=user)
        preference.muted_events = sorted(muted)
        preference.updated_at = timezone.now()
        preference.save()
        record(
            actor=user,
            verb="email_preferences.changed",
            target=preference,
            data={"muted": sorted(muted - before), "unmuted": sorted(before - muted)},
            ip=ip,
        )
    return preference


def notification_email(
    *, user, event: str, key: str, subject: str, body: str
) -> Notification | None:
    """Queue an e-mail about ``event`` to ``user`` unless they have no address, muted the event,
    or were already e-mailed under ``key``. Call inside the transaction of the change it
    announces; delivery starts after commit."""
    _check_event(event)
    if event not in EMAIL_EVENTS:
        raise ValueError(f"{event!r} is not e-mailed; one of {', '.join(EMAIL_EVENTS)}")
    if not user.is_active or not user.email or event in email_muted_events(user=user):
        return None
    if Notification.objects.filter(recipient=user, dedup_key=key).exists():
        return None
    try:
        with transaction.atomic():  # a concurrent sender of the same key wins; this one yields
            notification = Notification.objects.create(
                channel=Notification.Channel.EMAIL,
                recipient=user,
                dedup_key=key,
                event=event,
                payload={"subject": subject.splitlines()[0][:200], "body": body},
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None
    transaction.on_commit(lambda: _send_task(notification.pk, attempt=1, countdown=None))
    return notification


def notification_email_approvers(*, request: ApprovalRequest, event: str, text: str) -> int:
    """E-mail everyone who may still decide the pending ``request`` (approvals.policy decides);
    returns how many e-mails were queued."""
    decided = set(request.decisions.values_list("user_id", flat=True))
    subject = text.splitlines()[0]
    queued = 0
    for user in approver_candidates():
        if policy.is_eligible_approver(user=user, request=request, decided_user_ids=decided):
            key = f"approval:{request.pk}:{event}"
            sent = notification_email(user=user, event=event, key=key, subject=subject, body=text)
            queued += sent is not None
    return queued


def approval_reminders_send(*, now: datetime | None = None) -> int:
    """Remind the eligible approvers of every pending request past half its lifetime, once
    per request and approver (beat, every minute). Returns how many e-mails were queued."""
    now = now or timezone.now()
    pending = (
        ApprovalRequest.objects.filter(state=ApprovalRequest.State.PENDING, expires_at__gt=now)
        .select_related("deploy__environment__app", "deploy__release", "deploy__requested_by")
        .order_by("expires_at")
    )
    queued = 0
    for request in pending:
        if request.created_at + (request.expires_at - request.created_at) / 2 > now:
            continue
        deploy = request.deploy
        left = max(1, round((request.expires_at - now).total_seconds() / 60))
        detail = (
            f"Still waiting for {request.approvals_required} approval(s); it expires in "
            f"{left} min, at {request.expires_at:%Y-%m-%d %H:%M} UTC. Reason: {deploy.reason}"
        )
        text = html.unescape(_payload(deploy, "approval.reminder", detail)["text"])
        with transaction.atomic():
            queued += notification_email_approvers(
                request=request, event="approval.reminder", text=text
            )
    return queued


def _email_admins(*, event: str, key: str, lines: list[str]) -> None:
    text = "\n".join(lines)
    for user in users_holding(policy.ADMIN):
        notification_email(user=user, event=event, key=key, subject=lines[0], body=text)


def notification_send(*, deploy: Deploy, event: str, detail: str = "") -> Notification | None:
    """Queue a notification of ``event`` about ``deploy`` to its app's webhook, if it has one;
    e-mail its requester about the events they are told of (``REQUESTER_EVENTS``) and the
    eligible approvers about a new request.

    Call inside the transaction of the change it announces; delivery starts after commit.
    """
    _check_event(event)
    payload = _payload(deploy, event, detail)
    text = html.unescape(payload["text"])
    requester = deploy.requested_by
    if event in REQUESTER_EVENTS and requester is not None:
        notification_email(
            user=requester,
            event=event,
            key=f"deploy:{deploy.pk}:{event}",
            subject=text.splitlines()[0],
            body=text,
        )
    if event in APPROVER_EVENTS:
        notification_email_approvers(request=deploy.approval_request, event=event, text=text)
    app = deploy.environment.app
    if not app.notification_webhook_url:
        return None
    return _queue(app=app, deploy=deploy, event=event, payload=payload)


def notification_broadcast(
    *, event: str, key: str, headline: str, lines: list[str], subject: dict
) -> list[Notification]:
    """Queue a notification about HotDash itself (no deploy) to every app's webhook (whoever
    operates an app depends on HotDash) and e-mail the admins, once per ``key``. ``subject`` is
    added to the payload as is.

    Call inside the transaction of the change it announces; delivery starts after commit.
    """
    _check_event(event)
    _email_admins(event=event, key=key, lines=[headline, *lines])
    apps = App.objects.exclude(notification_webhook_url="").order_by("name")
    payload = _message(event, [headline, *lines], ["HotDash"]) | subject
    return [_queue(app=app, deploy=None, event=event, payload=payload) for app in apps]


def notification_app_send(
    *, app: App, event: str, key: str, headline: str, lines: list[str], subject: dict
) -> Notification | None:
    """Queue a notification about ``app`` (no deploy) to its webhook, if it has one, and e-mail
    the admins, once per ``key``. ``subject`` is added to the payload as is.

    Call inside the transaction of the change it announces; delivery starts after commit.
    """
    _check_event(event)
    _email_admins(event=event, key=key, lines=[headline, *lines])
    if not app.notification_webhook_url:
        return None
    payload = _message(event, [headline, *lines], ["HotDash"]) | subject
    return _queue(app=app, deploy=None, event=event, payload=payload)


def _queue(*, app: App, deploy: Deploy | None, event: str, payload: dict) -> Notification:
    notification = Notification.objects.create(
        app=app, deploy=deploy, event=event, payload=payload, next_attempt_at=timezone.now()
    )
    transaction.on_commit(lambda: _send_task(notification.pk, attempt=1, countdown=None))
    return notification


def _send_task(notification_id: int, *, attempt: int, countdown: float | None) -> None:
    """Broker down: the notification stays pending on /ops until the sweep re-sends it."""
    queue.send(task_names.NOTIFICATION_DELIVER, notification_id, attempt, countdown=countdown)


def _not_sendable(notification: Notification) -> str:
    if notification.channel == Notification.Channel.EMAIL:
        user = notification.recipient
        if not user.is_active or not user.email:
            return f"user {user.get_username()} has no e-mail address or is inactive"
        return ""
    app = notification.app
    if not app.notification_webhook_url:
        return f"no webhook URL configured for app {app.name}"
    if not app.notification_webhook_secret:
        return f"no signing secret configured for app {app.name}"
    return ""


def _attempt_seconds() -> float:
    """How long one attempt may take before it is presumed lost: httpx applies the timeout
    to each of connecting, writing, waiting and reading, plus a margin."""
    return 4 * settings.NOTIFICATION_TIMEOUT_SECONDS + 10


def notification_deliver(*, notification_id: int, attempt: int) -> float | None:
    """Make attempt number ``attempt`` (1-based) unless it was made already. Returns seconds
    until the next try, or None when done (delivered, given up, refused, or not this
    message's turn)."""
    now = timezone.now()
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("app", "recipient")
            .filter(pk=notification_id, state=Notification.State.PENDING, attempts=attempt - 1)
            .first()
        )
        if notification is None:
            return None
        refusal = _not_sendable(notification)
        if refusal:
            notification.state = Notification.State.FAILED
            notification.next_attempt_at = None
            notification.last_error += f"at {now.isoformat()}: not sent: {refusal}\n"
            notification.save(update_fields=["state", "next_attempt_at", "last_error"])
            log.warning("notification %s not sent: %s", notification_id, refusal)
            return None
        notification.attempts = attempt
        notification.next_attempt_at = now + timedelta(seconds=_attempt_seconds())
        notification.save(update_fields=["attempts", "next_attempt_at"])
    if notification.channel == Notification.Channel.EMAIL:
        error = _email(notification)
    else:
        error = _post(notification)
    return _attempt_record(notification_id=notification_id, attempt=attempt, error=error)


def _email(notification: Notification) -> str:
    """Send the e-mail once; the error, or "" when the mail server took it."""
    try:
        send_mail(
            notification.payload["subject"],
            notification.payload["body"],
            None,
            [notification.recipient.email],
        )
    except Exception as exc:  # noqa: BLE001 - any mail failure is this attempt's error
        return f"{type(exc).__name__}: {exc}"
    return ""


def _post(notification: Notification) -> str:
    """POST the signed payload to the app's webhook once; the error, or "" on a 2xx."""
    app = notification.app
    body = json.dumps(notification.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "hotdash-notifications",
        SIGNATURE_HEADER: sign(body, app.notification_webhook_secret),
    }
    error = ""
    try:
        with httpx.Client(
            timeout=settings.NOTIFICATION_TIMEOUT_SECONDS, verify=tls_context()
        ) as client:
            response = client.post(app.notification_webhook_url, content=body, headers=headers)
        if not response.is_success:
            error = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        # Name the host only: the URL's path may be the webhook's secret.
        url = app.notification_webhook_url
        error = f"{type(exc).__name__}: {exc}".replace(url, webhook_host(url))
    return error


def _attempt_record(*, notification_id: int, attempt: int, error: str) -> float | None:
    now = timezone.now()
    with transaction.atomic():
        notification = Notification.objects.select_for_update().get(pk=notification_id)
        if not error:
            notification.state = Notification.State.DELIVERED
            notification.delivered_at = now
            notification.next_attempt_at = None
            notification.last_error += f"attempt {attempt} at {now.isoformat()}: delivered\n"
            notification.save(
                update_fields=["state", "delivered_at", "next_attempt_at", "last_error"]
            )
            return None
        notification.last_error += f"attempt {attempt} at {now.isoformat()}: {error}\n"
        fields = ["last_error"]
        # Only the latest attempt of a pending row decides what happens next; an attempt that
        # outlived its time was already handed on by the sweep.
        latest = (
            notification.state == Notification.State.PENDING and notification.attempts == attempt
        )
        countdown = None
        if latest and attempt >= settings.NOTIFICATION_MAX_ATTEMPTS:
            notification.state = Notification.State.FAILED
            notification.next_attempt_at = None
            fields += ["state", "next_attempt_at"]
        elif latest:
            countdown = min(300.0, 2.0**attempt)
            notification.next_attempt_at = now + timedelta(seconds=countdown)
            fields.append("next_attempt_at")
        notification.save(update_fields=fields)
    log.warning("notification %s attempt %s failed: %s", notification_id, attempt, error)
    return countdown


def notification_retry(*, notification_id: int, attempt: int, countdown: float) -> None:
    """Send the delivery task for ``attempt`` after ``countdown`` seconds."""
    _send_task(notification_id, attempt=attempt, countdown=countdown)


def notification_resend_stuck(*, now: datetime | None = None) -> list[int]:
    """Send again every pending notification more than RESEND_AFTER_SECONDS past its
    next_attempt_at. An attempt that never reported back (its worker died) counts as made;
    one past NOTIFICATION_MAX_ATTEMPTS is marked failed instead. Returns the ids re-sent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=RESEND_AFTER_SECONDS)
    stuck = Notification.objects.filter(
        state=Notification.State.PENDING, next_attempt_at__lt=cutoff
    )
    resent: list[int] = []
    for pk in stuck.order_by("next_attempt_at", "id").values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            notification = (
                Notification.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, state=Notification.State.PENDING, next_attempt_at__lt=cutoff)
                .first()
            )
            if notification is None:
                continue
            made = notification.attempts
            lines = notification.last_error.splitlines()
            if made and not any(line.startswith(f"attempt {made} at ") for line in lines):
                notification.last_error += (
                    f"attempt {made} at {now.isoformat()}: no result; its worker stopped\n"
                )
            if made >= settings.NOTIFICATION_MAX_ATTEMPTS:
                notification.state = Notification.State.FAILED
                notification.next_attempt_at = None
                notification.save(update_fields=["state", "next_attempt_at", "last_error"])
                log.warning("notification %s failed: attempt %s was lost", pk, made)
                continue
            # Due again only if this message is lost too; a duplicate of it cannot POST twice.
            notification.next_attempt_at = now
            notification.save(update_fields=["next_attempt_at", "last_error"])
            transaction.on_commit(
                lambda pk=pk, attempt=made + 1: _send_task(pk, attempt=attempt, countdown=None)
            )
        resent.append(pk)
    if resent:
        log.warning("re-sent %d stuck notifications", len(resent))
    return resent
