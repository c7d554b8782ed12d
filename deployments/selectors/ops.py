"""Reads for the Ops page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from deployments.models import Environment, Notification, WorkerHeartbeat

# A worker whose heartbeat (beat sends one every 30 s) is older than this is shown as stale.
WORKER_STALE_AFTER = timedelta(minutes=2)


def webhook_host(url: str) -> str:
    """Where a webhook URL points, without its path, query or credentials (a Slack webhook's
    path is itself a secret)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return ""
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


@dataclass(frozen=True)
class NotificationRow:
    created_at: datetime
    event: str
    app: str  # "" for an e-mail about HotDash itself
    target: str  # the webhook's host (never its path or signing secret), or "e-mail to <user>"
    state: str
    attempts: int
    last_error: str  # the last line of the row's delivery log


def notification_target(notification: Notification) -> str:
    """Where a notification goes: its webhook's host (never its path or signing secret), or
    "e-mail to <user>"."""
    if notification.channel == Notification.Channel.EMAIL:
        return f"e-mail to {notification.recipient.get_username()}"
    return webhook_host(notification.app.notification_webhook_url)


def notification_list_recent(*, limit: int = 20) -> list[NotificationRow]:
    notifications = Notification.objects.select_related("app", "recipient").order_by(
        "-created_at", "-id"
    )
    return [
        NotificationRow(
            created_at=notification.created_at,
            event=notification.event,
            app=notification.app.name if notification.app else "",
            target=notification_target(notification),
            state=notification.state,
            attempts=notification.attempts,
            last_error=(notification.last_error.splitlines() or [""])[-1],
        )
        for notification in notifications.only(
            "created_at",
            "channel",
            "event",
            "state",
            "attempts",
            "last_error",
            "app__name",
            "app__notification_webhook_url",
            "recipient__username",
        )[:limit]
    ]


@dataclass(frozen=True)
class WorkerRow:
    hostname: str
    seen_at: datetime
    stale: bool


def worker_list(*, now: datetime) -> list[WorkerRow]:
    """Every worker that ever beat, newest heartbeat first; stale after WORKER_STALE_AFTER."""
    return [
        WorkerRow(
            hostname=hb.hostname, seen_at=hb.seen_at, stale=now - hb.seen_at > WORKER_STALE_AFTER
        )
        for hb in WorkerHeartbeat.objects.order_by("-seen_at", "hostname")
    ]


def environment_uptime_list() -> list[Environment]:
    """Every environment the uptime probes have judged, down ones first."""
    return list(
        Environment.objects.select_related("app")
        .exclude(uptime=Environment.Uptime.UNKNOWN)
        .order_by("uptime", "app__name", "name")
    )
