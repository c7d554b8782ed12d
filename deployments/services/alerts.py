"""Operational alerts: conditions about HotDash itself (selectors/alerts.py), evaluated by beat
every minute. Each condition is announced once when it starts to hold and once when it clears:
audited, e-mailed to admins and posted to every app's webhook (notification_broadcast), each
retried like any notification."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from approvals.audit import record
from deployments.models import Alert
from deployments.selectors.alerts import CONDITIONS, alert_conditions
from deployments.services.notifications import notification_broadcast


def alerts_evaluate(*, now: datetime | None = None) -> list[Alert]:
    """Compare each condition with its stored state and announce every change. Returns the
    alerts that changed. Safe to run twice: a second run finds nothing to change."""
    now = now or timezone.now()
    changed = []
    for condition, detail in alert_conditions(now=now).items():
        with transaction.atomic():
            Alert.objects.get_or_create(condition=condition)
            alert = Alert.objects.select_for_update().get(condition=condition)
            if bool(detail) == alert.active:
                continue
            _announce(alert, detail=detail, now=now)
        changed.append(alert)
    return changed


def _announce(alert: Alert, *, detail: str, now: datetime) -> None:
    title = CONDITIONS[alert.condition][0]
    held_since = alert.since
    raised = bool(detail)
    alert.active, alert.since, alert.detail = raised, now, detail
    alert.save(update_fields=["active", "since", "detail"])
    if raised:
        event, headline, lines = "alert.raised", title, [detail]
    else:
        event, headline = "alert.cleared", f"{title}: cleared"
        lines = [f"It held since {held_since:%Y-%m-%d %H:%M} UTC."]
    record(
        actor="system",
        verb=event,
        target=alert,
        data={"condition": alert.condition, "reason": lines[0]},
    )
    notification_broadcast(
        event=event,
        key=f"alert:{alert.condition}:{now.isoformat()}",
        headline=headline,
        lines=lines,
        subject={"alert": {"condition": alert.condition, "active": raised}},
    )
