"""The operational conditions HotDash alerts on, read from the database, and the alerts that
are active now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from approvals.models import AuditVerification
from deployments.models import Alert, Deploy, Notification, WebhookDelivery, WorkerHeartbeat
from deployments.selectors.ops import WORKER_STALE_AFTER

# Deliveries that failed within this window make "webhook deliveries failing" hold.
WEBHOOK_FAILURE_WINDOW = timedelta(hours=1)


def _workers_stale(now: datetime) -> str:
    queued = Deploy.objects.filter(state=Deploy.State.QUEUED).count()
    if not queued:
        return ""
    last = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    if last is not None and now - last <= WORKER_STALE_AFTER:
        return ""
    seen = f"the last heartbeat was at {last:%Y-%m-%d %H:%M:%S} UTC" if last else "none ever beat"
    minutes = int(WORKER_STALE_AFTER.total_seconds() // 60)
    return f"No worker alive for {minutes} minutes ({seen}) while {queued} deploy(s) are queued."


def _audit_chain_broken(now: datetime) -> str:
    last = AuditVerification.objects.order_by("-id").first()
    if last is None or last.ok:
        return ""
    return f"The audit chain failed verification at event #{last.broken_event_id}: {last.reason}"


def _webhook_deliveries_failing(now: datetime) -> str:
    since = now - WEBHOOK_FAILURE_WINDOW
    inbound = WebhookDelivery.objects.filter(
        state=WebhookDelivery.State.FAILED, processed_at__gte=since
    ).count()
    outbound = Notification.objects.filter(
        channel=Notification.Channel.WEBHOOK,
        state=Notification.State.FAILED,
        created_at__gte=since,
    ).count()
    if not inbound and not outbound:
        return ""
    return (
        f"In the last hour {inbound} GitHub webhook deliveries failed to process and "
        f"{outbound} outgoing webhook notifications gave up."
    )


# Each condition: what it is called, and what holds now ("" while it does not).
CONDITIONS = {
    "workers_stale": ("Workers stale", _workers_stale),
    "audit_chain_broken": ("Audit chain broken", _audit_chain_broken),
    "webhook_deliveries_failing": ("Webhook deliveries failing", _webhook_deliveries_failing),
}


def alert_conditions(*, now: datetime) -> dict[str, str]:
    """Each condition's detail as of ``now`` ("" when it does not hold)."""
    return {key: holds(now) for key, (_, holds) in CONDITIONS.items()}


@dataclass(frozen=True)
class ActiveAlert:
    title: str
    since: datetime
    detail: str


def alert_list_active() -> list[ActiveAlert]:
    """The conditions that hold as of the last evaluation, oldest first."""
    return [
        ActiveAlert(title=CONDITIONS[alert.condition][0], since=alert.since, detail=alert.detail)
        for alert in Alert.objects.filter(active=True).order_by("since", "condition")
    ]
