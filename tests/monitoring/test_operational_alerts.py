"""Operational alerts: each condition about HotDash itself is announced once when it starts to
hold and once when it clears (audited, e-mailed to admins, posted to every app's webhook)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from approvals.models import AuditEvent, AuditVerification
from deployments.models import (
    Alert,
    Deploy,
    Environment,
    Notification,
    WebhookDelivery,
    WorkerHeartbeat,
)
from deployments.services.alerts import alerts_evaluate

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def hooked(demo):
    demo.notification_webhook_url = "https://hooks.example.com/services/T0/B0/path-token"
    demo.notification_webhook_secret = "signing-secret"
    demo.save()
    return demo


def announced(event: str) -> list[tuple[str, str]]:
    """(channel, recipient or app) of every notification of ``event``."""
    rows = Notification.objects.filter(event=event).select_related("app", "recipient")
    return sorted((n.channel, n.recipient.username if n.recipient else n.app.name) for n in rows)


def verbs() -> list[tuple[str, str]]:
    events = AuditEvent.objects.filter(verb__startswith="alert.").order_by("id")
    return [(e.verb, e.data["condition"]) for e in events]


def test_stale_workers_alert_once_while_deploys_wait_and_clear_once(hooked, requester):
    WorkerHeartbeat.objects.create(hostname="celery@w1", seen_at=T0 - timedelta(minutes=5))
    assert alerts_evaluate(now=T0) == []  # stale, but nothing waits for a worker

    Deploy.objects.create(
        environment=hooked.environments.get(kind=Environment.Kind.PRODUCTION),
        requested_by=requester,
        reason="ship",
        state=Deploy.State.QUEUED,
    )
    [raised] = alerts_evaluate(now=T0)
    assert raised.condition == "workers_stale" and raised.active and raised.since == T0
    assert raised.detail == (
        "No worker alive for 2 minutes (the last heartbeat was at 2026-03-02 11:55:00 UTC) "
        "while 1 deploy(s) are queued."
    )
    assert alerts_evaluate(now=T0 + timedelta(minutes=1)) == []  # still true: no news
    assert announced("alert.raised") == [("email", "admin"), ("webhook", "hot-dash")]
    webhook = Notification.objects.get(event="alert.raised", channel="webhook")
    assert webhook.payload["alert"] == {"condition": "workers_stale", "active": True}
    email = Notification.objects.get(event="alert.raised", channel="email")
    assert email.payload["subject"] == "Workers stale"
    assert "1 deploy(s) are queued" in email.payload["body"]

    WorkerHeartbeat.objects.filter(hostname="celery@w1").update(seen_at=T0 + timedelta(minutes=2))
    [cleared] = alerts_evaluate(now=T0 + timedelta(minutes=3))
    assert not cleared.active and cleared.detail == ""
    assert alerts_evaluate(now=T0 + timedelta(minutes=4)) == []
    assert announced("alert.cleared") == [("email", "admin"), ("webhook", "hot-dash")]
    email = Notification.objects.get(event="alert.cleared", channel="email")
    assert email.payload["subject"] == "Workers stale: cleared"
    assert email.payload["body"].endswith("It held since 2026-03-02 12:00 UTC.")
    assert verbs() == [("alert.raised", "workers_stale"), ("alert.cleared", "workers_stale")]


def test_no_worker_ever_is_stale_too(demo, requester):
    Deploy.objects.create(
        environment=demo.environments.get(kind=Environment.Kind.PRODUCTION),
        requested_by=requester,
        reason="ship",
        state=Deploy.State.QUEUED,
    )
    [raised] = alerts_evaluate(now=T0)
    assert "(none ever beat)" in raised.detail


def test_a_broken_audit_chain_alerts_until_a_verification_passes(demo):
    AuditVerification.objects.create(finished_at=T0, ok=True)
    assert alerts_evaluate(now=T0) == []
    AuditVerification.objects.create(
        finished_at=T0, ok=False, broken_event_id=42, reason="hash mismatch"
    )
    [raised] = alerts_evaluate(now=T0)
    assert raised.detail == "The audit chain failed verification at event #42: hash mismatch"
    assert alerts_evaluate(now=T0 + timedelta(hours=1)) == []
    AuditVerification.objects.create(finished_at=T0 + timedelta(hours=1), ok=True)
    [cleared] = alerts_evaluate(now=T0 + timedelta(hours=1))
    assert cleared.condition == "audit_chain_broken" and not cleared.active
    assert verbs() == [
        ("alert.raised", "audit_chain_broken"),
        ("alert.cleared", "audit_chain_broken"),
    ]


def test_failing_webhook_deliveries_alert_for_an_hour(demo):
    WebhookDelivery.objects.create(
        delivery_id="d-1",
        event="release",
        payload={},
        state=WebhookDelivery.State.FAILED,
        processed_at=T0,
    )
    [raised] = alerts_evaluate(now=T0 + timedelta(minutes=1))
    assert raised.detail == (
        "In the last hour 1 GitHub webhook deliveries failed to process and "
        "0 outgoing webhook notifications gave up."
    )
    assert alerts_evaluate(now=T0 + timedelta(minutes=59)) == []
    [cleared] = alerts_evaluate(now=T0 + timedelta(minutes=61))
    assert cleared.condition == "webhook_deliveries_failing" and not cleared.active


def test_ops_shows_the_active_alerts(client, demo, viewer):
    AuditVerification.objects.create(finished_at=T0, ok=False, broken_event_id=7, reason="gap")
    alerts_evaluate(now=T0)
    client.force_login(viewer)
    page = client.get("/ops/").content.decode()
    section = page[page.index('id="alerts"') : page.index("<h2>Services</h2>")]
    assert "Audit chain broken" in section and "at event #7: gap" in section
    Alert.objects.update(active=False)
    assert 'id="alerts"' not in client.get("/ops/").content.decode()


def test_beat_evaluates_the_alerts_and_reminds_approvers_every_minute(settings):
    from deployments.tasks.alerts import alerts_evaluate_task
    from deployments.tasks.notifications import approval_reminders_send_task

    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["alerts-evaluate"]["task"] == alerts_evaluate_task.name
    assert schedule["approval-reminders"]["task"] == approval_reminders_send_task.name
    assert (
        schedule["alerts-evaluate"]["schedule"] == schedule["approval-reminders"]["schedule"] == 60
    )
