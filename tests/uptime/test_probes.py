"""Uptime probes against the sandbox's simulated app URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from approvals.models import AuditEvent
from deployments.models import Environment, Notification, Preview, Probe
from deployments.selectors.uptime import probe_targets, uptime_failures, uptime_list
from deployments.services.uptime import probe_url, uptime_probe_round
from hotdash.integrations.sandbox_control import sandbox_control

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(demo, sandbox):
    demo.notification_webhook_url = "https://hooks.example/hotdash"
    demo.notification_webhook_secret = "uptime-test-signing-secret"
    demo.save()
    return demo


@pytest.fixture
def production(app) -> Environment:
    return app.environments.get(kind=Environment.Kind.PRODUCTION)


def rounds(count: int, start: datetime) -> datetime:
    """Run ``count`` probe rounds a minute apart from ``start``; returns the next minute."""
    for minute in range(count):
        uptime_probe_round(now=start + timedelta(minutes=minute))
    return start + timedelta(minutes=count)


def events(verb: str, environment: Environment) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(verb=verb, environment_name=environment.name).order_by("id")
    )


def test_the_sandbox_serves_each_fly_app_health_url(sandbox, production):
    url = probe_url(production)
    assert url == f"{sandbox.url}/apps/{production.fly_app_name}/health"
    with httpx.Client(transport=httpx.WSGITransport(app=sandbox.app)) as client:
        assert client.get(url).status_code == 200
        sandbox_control().set_app_health(app=production.fly_app_name, status=503)
        assert client.get(url).status_code == 503
        assert client.get(f"{sandbox.url}/apps/no-such-app/health").status_code == 404


def test_targets_skip_asleep_previews_and_undeployed_environments(app, production):
    staging = app.environments.get(kind=Environment.Kind.STAGING)
    preview_env = Environment.objects.create(
        app=app,
        name="pr-7",
        kind=Environment.Kind.PREVIEW,
        fly_app_name="hot-dash-pr-7",
        current_image_ref="registry.fly.io/hot-dash:pr-7",
    )
    preview = Preview.objects.create(
        app=app, environment=preview_env, pr_number=7, state=Preview.State.SLEEPING
    )
    Environment.objects.create(
        app=app, name="empty", kind=Environment.Kind.STAGING, fly_app_name="hot-dash-empty"
    )
    assert {e.pk for e in probe_targets()} == {production.pk, staging.pk}
    preview.state = Preview.State.RUNNING
    preview.save()
    assert {e.pk for e in probe_targets()} == {production.pk, staging.pk, preview_env.pk}


def test_three_failures_take_it_down_and_two_successes_bring_it_back(sandbox, production):
    sandbox.set_app_health(production.fly_app_name, status=503)
    after_two = rounds(2, T0)
    production.refresh_from_db()
    assert production.uptime == Environment.Uptime.UNKNOWN
    assert events("environment.down", production) == []

    after_five = rounds(3, after_two)  # the third failure decides; two more change nothing
    production.refresh_from_db()
    assert production.uptime == Environment.Uptime.DOWN
    assert production.uptime_since == after_two
    assert production.health == Environment.Health.FAILING
    [down] = events("environment.down", production)
    assert down.environment_name == production.name
    assert down.data["status_code"] == 503
    assert down.data["error"] == "HTTP 503 Service Unavailable"
    [alert] = Notification.objects.filter(event="environment.down", channel="webhook")
    assert "HTTP 503 Service Unavailable" in alert.payload["text"]
    assert alert.payload["environment"]["name"] == production.name
    [email] = Notification.objects.filter(event="environment.down", channel="email")
    assert email.recipient.username == "admin"  # the demo's one admin
    assert email.payload["subject"] == "hot-dash production is down"
    assert "HTTP 503 Service Unavailable" in email.payload["body"]

    sandbox.set_app_health(production.fly_app_name, status=200)
    rounds(1, after_five)
    production.refresh_from_db()
    assert production.uptime == Environment.Uptime.DOWN  # one success is not enough
    rounds(3, after_five + timedelta(minutes=1))
    production.refresh_from_db()
    assert production.uptime == Environment.Uptime.UP
    assert production.uptime_since == after_five + timedelta(minutes=1)
    assert production.health == Environment.Health.HEALTHY
    assert len(events("environment.up", production)) == 1
    assert Notification.objects.filter(event="environment.recovered").count() == 2  # hook, mail
    assert Notification.objects.filter(event="environment.down").count() == 2


def test_the_first_verdict_is_audited_but_not_announced(production):
    rounds(2, T0)
    production.refresh_from_db()
    assert production.uptime == Environment.Uptime.UP
    assert len(events("environment.up", production)) == 1
    assert not Notification.objects.filter(event__startswith="environment.").exists()


def test_each_probe_stores_status_latency_and_error(sandbox, production):
    sandbox.set_app_health(production.fly_app_name, status=500)
    rounds(1, T0)
    probe = Probe.objects.get(environment=production)
    assert (probe.ok, probe.status_code, probe.checked_at) == (False, 500, T0)
    assert probe.error == "HTTP 500 Internal Server Error"
    assert probe.latency_ms >= 0


def test_uptime_percentages_over_a_known_series(sandbox, production):
    # 24 h ago .. now: 3 failures then 9 successes; 5 days ago: 4 failures more.
    sandbox.set_app_health(production.fly_app_name, status=503)
    rounds(4, T0 - timedelta(days=5))
    rounds(3, T0 - timedelta(hours=2))
    sandbox.set_app_health(production.fly_app_name, status=200)
    rounds(9, T0 - timedelta(hours=1))
    rounds(1, T0 + timedelta(minutes=1))  # after "now": not counted
    Probe.objects.create(
        environment=production, checked_at=T0 - timedelta(days=8), ok=True, latency_ms=1
    )
    uptime = uptime_list(environment_ids=[production.pk], now=T0)[production.pk]
    assert uptime.percent_24h == 75.0  # 9 of 12
    assert uptime.percent_7d == 56.25  # 9 of 16
    # Hourly means: the three failures (T0-2h), then nine successes (T0-1h); both hours.
    assert len(uptime.hourly_latency_ms) == 2
    failures = uptime_failures(environment=production, limit=5)
    assert len(failures) == 5
    assert failures[0].checked_at == T0 - timedelta(hours=2) + timedelta(minutes=2)
    assert failures[0].error == "HTTP 503 Service Unavailable"


def test_uptime_is_exact_over_a_week_of_minutes(production):
    """A week of one probe a minute, one failure an hour in the last day and none before:
    the percentages are exact to the hundredth (1416/1440 and 10056/10080)."""
    start = T0 - timedelta(days=7)
    Probe.objects.bulk_create(
        Probe(
            environment=production,
            checked_at=start + timedelta(minutes=minute, seconds=30),
            ok=not (minute >= 6 * 1440 and minute % 60 == 0),
            latency_ms=100 if minute // 60 % 2 == 0 else 200,  # alternating by the hour
        )
        for minute in range(7 * 1440)
    )
    uptime = uptime_list(environment_ids=[production.pk], now=T0)[production.pk]
    assert uptime.percent_24h == round(100 * 1416 / 1440, 2) == 98.33
    assert uptime.percent_7d == round(100 * 10056 / 10080, 2) == 99.76
    assert uptime.hourly_latency_ms == [100, 200] * 12
    empty = uptime_list(environment_ids=[production.pk], now=start)[production.pk]
    assert (empty.percent_24h, empty.percent_7d, empty.hourly_latency_ms) == (None, None, [])


def test_a_probe_that_outlasts_its_timeout_fails_without_holding_the_round(
    demo, live_sandbox, settings
):
    settings.UPTIME_PROBE_TIMEOUT_SECONDS = 1
    production = demo.environments.get(kind=Environment.Kind.PRODUCTION)
    staging = demo.environments.get(kind=Environment.Kind.STAGING)
    live_sandbox.set_app_health(production.fly_app_name, status=200, latency=3)
    probes = {p.environment_id: p for p in uptime_probe_round(now=T0)}
    assert probes[production.pk].ok is False
    assert probes[production.pk].status_code is None
    assert "Timeout" in probes[production.pk].error
    assert probes[staging.pk].ok is True
