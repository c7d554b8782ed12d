"""Reads for the Ops page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.db.models import Count, F, Q

from deployments.models import Deploy, Environment, Notification, WorkerHeartbeat
from hotdash.queries import ConstantIn

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
    running: list[int]  # the deploys it runs now (holding their live run: lease)


def _running_by_worker(now: datetime) -> dict[str, list[int]]:
    """Deploy ids per worker hostname, from the live ``run:<worker>:<id>`` leases."""
    running: dict[str, list[int]] = {}
    leases = Deploy.objects.filter(
        ConstantIn(F("state"), Deploy.ACTIVE_STATES),
        lease_owner__startswith="run:",
        lease_expires_at__gt=now,
    ).order_by("pk")
    for pk, owner in leases.values_list("pk", "lease_owner"):
        hostname = owner.removeprefix("run:").rsplit(":", 1)[0]
        running.setdefault(hostname, []).append(pk)
    return running


def worker_list(*, now: datetime) -> list[WorkerRow]:
    """Every worker that ever beat, newest heartbeat first, with the deploys it runs; stale
    after WORKER_STALE_AFTER."""
    running = _running_by_worker(now)
    return [
        WorkerRow(
            hostname=hb.hostname,
            seen_at=hb.seen_at,
            stale=now - hb.seen_at > WORKER_STALE_AFTER,
            running=running.get(hb.hostname, []),
        )
        for hb in WorkerHeartbeat.objects.order_by("-seen_at", "hostname")
    ]


@dataclass(frozen=True)
class Backlog:
    deploys_queued: int  # waiting for a worker
    deploys_awaiting_approval: int
    notifications_pending: int  # the outbox: not yet delivered, still being tried
    notifications_failed_24h: int


def ops_backlog(*, now: datetime) -> Backlog:
    waiting = (Deploy.State.QUEUED, Deploy.State.AWAITING_APPROVAL)
    deploys = Deploy.objects.filter(ConstantIn(F("state"), waiting)).aggregate(
        queued=Count("id", filter=Q(state=Deploy.State.QUEUED)),
        awaiting=Count("id", filter=Q(state=Deploy.State.AWAITING_APPROVAL)),
    )
    notifications = Notification.objects.aggregate(
        pending=Count("id", filter=Q(state=Notification.State.PENDING)),
        failed=Count(
            "id",
            filter=Q(state=Notification.State.FAILED, created_at__gte=now - timedelta(hours=24)),
        ),
    )
    return Backlog(
        deploys_queued=deploys["queued"],
        deploys_awaiting_approval=deploys["awaiting"],
        notifications_pending=notifications["pending"],
        notifications_failed_24h=notifications["failed"],
    )


def environment_uptime_list() -> list[tuple]:
    """Every environment the uptime probes have judged, down ones first, as what the Ops page
    shows of it: named tuples of id, app_name, name, uptime and uptime_since."""
    return list(
        Environment.objects.exclude(uptime=Environment.Uptime.UNKNOWN)
        .annotate(app_name=F("app__name"))
        .order_by("uptime", "app_name", "name")
        .values_list("id", "app_name", "name", "uptime", "uptime_since", named=True)
    )
