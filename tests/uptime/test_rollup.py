"""The hourly roll-up of old probes: the uptime figures read the same before and after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import Environment, Probe, ProbeHour
from deployments.selectors.uptime import hour_start, uptime_list
from deployments.services.uptime import RollUp, uptime_probes_roll_up

# Mid-hour on purpose: both uptime windows and the roll-up cutoff start on an earlier hour.
NOW = datetime(2026, 3, 2, 12, 25, 10, tzinfo=UTC)
START = NOW - timedelta(days=9)


def minute_probe(environment: Environment, minute: int) -> Probe:
    """One probe a minute from START: a failure every seventh minute, latency varying."""
    return Probe(
        environment=environment,
        checked_at=START + timedelta(minutes=minute, seconds=20),
        ok=minute % 7 != 0,
        latency_ms=40 + minute % 13 * 10,
    )


@pytest.fixture
def environments(demo) -> list[Environment]:
    """Production and staging with nine days of probes, one a minute, up to NOW."""
    environments = list(demo.environments.order_by("pk"))
    minutes = int((NOW - START).total_seconds() // 60)
    Probe.objects.bulk_create(
        minute_probe(environment, minute)
        for environment in environments
        for minute in range(minutes)
    )
    return environments


def expected_percent(since: datetime) -> float:
    """The share of successful probes from ``since`` to NOW, counted from the series itself."""
    minutes = int((NOW - START).total_seconds() // 60)
    probes = [minute_probe(None, m) for m in range(minutes)]
    window = [p.ok for p in probes if since <= p.checked_at <= NOW]
    return round(100 * sum(window) / len(window), 2)


def figures(environments: list[Environment]) -> dict:
    uptimes = uptime_list(environment_ids=[e.pk for e in environments], now=timezone.now())
    return {pk: (u.percent_24h, u.percent_7d, u.hourly_latency_ms) for pk, u in uptimes.items()}


@pytest.mark.parametrize("raw_hours", [48, 1])
def test_a_roll_up_keeps_the_uptime_figures(environments, settings, time_machine, raw_hours):
    """With the default 48 h the 7 d figure crosses the roll-up; with 1 h the 24 h figure and
    the sparkline do too."""
    settings.UPTIME_PROBE_RAW_HOURS = raw_hours
    time_machine.move_to(NOW, tick=False)
    ProbeHour.objects.create(  # older than the 30 days kept
        environment=environments[0],
        hour=NOW.replace(minute=0, second=0) - timedelta(days=31),
        probes=60,
        successes=60,
        latency_ms_total=600,
    )
    before = figures(environments)
    production = before[environments[0].pk]
    # The windows start on the hour 24 h (7 d) before 12:25:10 falls in: 12:00.
    assert production[0] == expected_percent(datetime(2026, 3, 1, 12, tzinfo=UTC)) == 85.73
    assert production[1] == expected_percent(datetime(2026, 2, 23, 12, tzinfo=UTC)) == 85.71
    assert len(production[2]) == 25  # 12:00 the day before .. 12:00 today

    cutoff = datetime(2026, 3, 2, 12, tzinfo=UTC) - timedelta(hours=raw_hours)
    rolled_hours = int((cutoff - START.replace(minute=0, second=0)).total_seconds() // 3600)
    result = uptime_probes_roll_up()

    old_probes = len(environments) * int((cutoff - START).total_seconds() // 60 + 1)
    assert result == RollUp(probes_rolled_up=old_probes, hours_dropped=1)
    assert not Probe.objects.filter(checked_at__lt=cutoff).exists()
    assert Probe.objects.filter(checked_at__gte=cutoff).exists()
    assert ProbeHour.objects.count() == len(environments) * rolled_hours
    assert figures(environments) == before

    # A day later, the boundary has moved across more hours: the figures still agree.
    time_machine.move_to(NOW + timedelta(hours=25), tick=False)
    later = figures(environments)
    # 25 more whole hours; with a 1 h cutoff, only the 85 minutes of probes that were left.
    newly_old = {48: 25 * 60, 1: 60 + 25}[raw_hours]
    assert uptime_probes_roll_up().probes_rolled_up == len(environments) * newly_old
    assert figures(environments) == later


def test_rolling_up_twice_changes_nothing_and_a_late_probe_is_added(environments, time_machine):
    time_machine.move_to(NOW, tick=False)
    uptime_probes_roll_up()
    hours = list(ProbeHour.objects.order_by("pk").values())
    probes = list(Probe.objects.order_by("pk").values_list("pk", flat=True))
    assert uptime_probes_roll_up() == RollUp(probes_rolled_up=0, hours_dropped=0)
    assert list(ProbeHour.objects.order_by("pk").values()) == hours
    assert list(Probe.objects.order_by("pk").values_list("pk", flat=True)) == probes

    # A probe stored late for an hour already rolled up joins that hour.
    production = environments[0]
    hour = datetime(2026, 2, 27, 8, tzinfo=UTC)
    Probe.objects.create(
        environment=production, checked_at=hour + timedelta(minutes=30), ok=False, latency_ms=1000
    )
    before = ProbeHour.objects.get(environment=production, hour=hour)
    assert uptime_probes_roll_up().probes_rolled_up == 1
    after = ProbeHour.objects.get(environment=production, hour=hour)
    assert (after.probes, after.successes, after.latency_ms_total) == (
        before.probes + 1,
        before.successes,
        before.latency_ms_total + 1000,
    )


def test_uptime_list_queries_do_not_grow_with_the_environments(demo, environments, time_machine):
    time_machine.move_to(NOW, tick=False)
    for name in ("qa", "perf", "demo"):
        environments.append(
            Environment.objects.create(
                app=demo, name=name, kind=Environment.Kind.STAGING, fly_app_name=f"hot-dash-{name}"
            )
        )
        Probe.objects.bulk_create(minute_probe(environments[-1], m) for m in range(0, 12960, 7))
    uptime_probes_roll_up()
    assert ProbeHour.objects.filter(environment=environments[-1]).exists()

    def queries(environment_ids: list[int]) -> int:
        with CaptureQueriesContext(connection) as captured:
            uptime_list(environment_ids=environment_ids, now=NOW)
        return len(captured)

    assert queries([environments[0].pk]) == queries([e.pk for e in environments]) == 2


@pytest.mark.parametrize("rolled_up", [False, True])
def test_uptime_list_reads_no_hours_when_none_was_probed_in_the_last_day(
    demo, time_machine, rolled_up
):
    """Probes from 9 to 6 days ago only: the 7 d figure from them, no 24 h figure and no hourly
    latency, in the one query."""
    time_machine.move_to(NOW, tick=False)
    production = demo.environments.order_by("pk").first()
    probes = [minute_probe(production, minute) for minute in range(3 * 1440)]
    Probe.objects.bulk_create(probes)
    if rolled_up:
        assert uptime_probes_roll_up().probes_rolled_up == len(probes)
    in_week = [p.ok for p in probes if p.checked_at >= hour_start(NOW - timedelta(days=7))]
    with CaptureQueriesContext(connection) as captured:
        uptime = uptime_list(environment_ids=[production.pk], now=NOW)[production.pk]
    assert len(captured) == 1
    assert uptime.percent_7d == round(100 * sum(in_week) / len(in_week), 2)
    assert (uptime.percent_24h, uptime.hourly_latency_ms) == (None, [])
