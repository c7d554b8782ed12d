"""Uptime probes: every environment's public health URL, probed concurrently each minute.

A round reads the targets, probes them all at once (one thread each, up to
settings.UPTIME_PROBE_CONCURRENCY, each bounded by settings.UPTIME_PROBE_TIMEOUT_SECONDS, so one
slow app never delays the others by more than its own timeout), then stores each probe. The
environment's uptime follows the probes: down after settings.UPTIME_DOWN_AFTER failures in a
row, up after settings.UPTIME_UP_AFTER successes in a row. Each change is audited
(``environment.down`` / ``environment.up``), sets the environment's health, and a fall and a
recovery are announced on the app's webhook.

Hourly, probes older than settings.UPTIME_PROBE_RAW_HOURS are rolled up into one ProbeHour per
environment and UTC hour (what the uptime figures need), and those older than
settings.UPTIME_PROBE_HOURLY_RETENTION_DAYS dropped: the history stays bounded.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from approvals.audit import record
from deployments.models import Environment, Probe, ProbeHour
from deployments.selectors.uptime import (
    hour_start,
    probe_hourly_totals,
    probe_recent_outcomes,
    probe_targets,
)
from deployments.services.notifications import notification_app_send
from hotdash.integrations.http import build_plain_client
from hotdash.integrations.sandbox_control import sandbox_app_url


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str


def probe_url(environment: Environment) -> str:
    """The environment's public URL + its HTTP check path (in sandbox mode, the sandbox's
    simulation of its Fly app); empty when it has no public URL."""
    path = "/" + environment.health_http_path.lstrip("/")
    if settings.SANDBOX_MODE:
        return sandbox_app_url(environment.fly_app_name) + path
    return environment.url.rstrip("/") + path if environment.url else ""


def probe_once(client: httpx.Client, url: str) -> ProbeResult:
    """GET ``url`` once: a 2xx or 3xx answer is a success; anything else, or no answer in
    time, a failure with its reason."""
    started = time.monotonic()
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        elapsed = round((time.monotonic() - started) * 1000)
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ProbeResult(ok=False, status_code=None, latency_ms=elapsed, error=reason[:300])
    elapsed = round((time.monotonic() - started) * 1000)
    ok = response.status_code < 400
    error = "" if ok else f"HTTP {response.status_code} {response.reason_phrase}"[:300]
    return ProbeResult(ok=ok, status_code=response.status_code, latency_ms=elapsed, error=error)


def _transition(environment: Environment, outcomes: list[bool]) -> str | None:
    """The uptime the environment moves to after its newest probes, or None."""
    down_after, up_after = settings.UPTIME_DOWN_AFTER, settings.UPTIME_UP_AFTER
    failed_run = len(outcomes) >= down_after and not any(outcomes[:down_after])
    passed_run = len(outcomes) >= up_after and all(outcomes[:up_after])
    if failed_run and environment.uptime != Environment.Uptime.DOWN:
        return Environment.Uptime.DOWN
    if passed_run and environment.uptime != Environment.Uptime.UP:
        return Environment.Uptime.UP
    return None


def probe_record(*, environment_id: int, result: ProbeResult, at: datetime) -> Probe:
    """Store one probe and move the environment's uptime if the probes say so."""
    with transaction.atomic():
        environment = (
            Environment.objects.select_for_update().select_related("app").get(pk=environment_id)
        )
        probe = Probe.objects.create(
            environment=environment,
            checked_at=at,
            ok=result.ok,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
        )
        limit = max(settings.UPTIME_DOWN_AFTER, settings.UPTIME_UP_AFTER)
        outcomes = probe_recent_outcomes(environment_id=environment.pk, limit=limit)
        new = _transition(environment, outcomes)
        if new is not None:
            _move(environment, new, probe=probe, at=at)
    return probe


def _move(environment: Environment, uptime: str, *, probe: Probe, at: datetime) -> None:
    previous = environment.uptime
    down = uptime == Environment.Uptime.DOWN
    environment.uptime = uptime
    environment.uptime_since = at
    environment.health = Environment.Health.FAILING if down else Environment.Health.HEALTHY
    environment.health_checked_at = at
    environment.save(update_fields=["uptime", "uptime_since", "health", "health_checked_at"])
    record(
        actor="system",
        verb="environment.down" if down else "environment.up",
        target=environment,
        scope=environment,
        data={
            "previous": previous,
            "status_code": probe.status_code,
            "error": probe.error,
            "latency_ms": probe.latency_ms,
        },
    )
    if not down and previous != Environment.Uptime.DOWN:
        return  # the first verdict on a new environment is no news
    name = f"{environment.app.name} {environment.name}"
    reason = probe.error or f"HTTP {probe.status_code}"
    notification_app_send(
        app=environment.app,
        event="environment.down" if down else "environment.recovered",
        key=f"environment:{environment.pk}:{uptime}:{at.isoformat()}",
        headline=f"{name} is down" if down else f"{name} recovered",
        lines=[f"Health check failing: {reason}"] if down else ["Health check passing again."],
        subject={
            "environment": {
                "app": environment.app.name,
                "name": environment.name,
                "uptime": uptime,
                "status_code": probe.status_code,
                "error": probe.error,
            }
        },
    )


def uptime_probe_round(*, now: datetime | None = None) -> list[Probe]:
    """Probe every target once, concurrently, and store the results. Returns the probes."""
    at = now or timezone.now()
    targets = [(env.pk, url) for env in probe_targets() if (url := probe_url(env))]
    if not targets:
        return []
    workers = min(settings.UPTIME_PROBE_CONCURRENCY, len(targets))
    with (
        build_plain_client(timeout=settings.UPTIME_PROBE_TIMEOUT_SECONDS) as client,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool,
    ):
        results = list(pool.map(lambda target: probe_once(client, target[1]), targets))
    return [
        probe_record(environment_id=env_id, result=result, at=at)
        for (env_id, _), result in zip(targets, results, strict=True)
    ]


class RollUp(NamedTuple):
    probes_rolled_up: int
    hours_dropped: int


def uptime_probes_roll_up(*, now: datetime | None = None) -> RollUp:
    """Roll the probes of every whole UTC hour that ended settings.UPTIME_PROBE_RAW_HOURS ago
    into ProbeHour rows and delete them; drop the hours older than
    settings.UPTIME_PROBE_HOURLY_RETENTION_DAYS. Running it again changes nothing."""
    at = now or timezone.now()
    cutoff = hour_start(at - timedelta(hours=settings.UPTIME_PROBE_RAW_HOURS))
    old = Probe.objects.filter(checked_at__lt=cutoff)
    with transaction.atomic():
        # The environments' locks serialise two roll-ups, so no probe is summed twice.
        list(
            Environment.objects.select_for_update()
            .filter(pk__in=old.values("environment_id"))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        hours = list(probe_hourly_totals(old))
        # Hours already rolled up (a probe stored late) get the new probes added to them.
        existing = {
            (row.environment_id, row.hour): row
            for row in ProbeHour.objects.filter(
                environment_id__in={h["environment_id"] for h in hours},
                hour__in={h["hour"] for h in hours},
            )
        }
        added, updated = [], []
        for totals in hours:
            row = existing.get((totals["environment_id"], totals["hour"]))
            if row is None:
                added.append(ProbeHour(**totals))
                continue
            row.probes += totals["probes"]
            row.successes += totals["successes"]
            row.latency_ms_total += totals["latency_ms_total"]
            updated.append(row)
        ProbeHour.objects.bulk_create(added)
        ProbeHour.objects.bulk_update(updated, ["probes", "successes", "latency_ms_total"])
        rolled_up, _ = old.delete()
        expired = at - timedelta(days=settings.UPTIME_PROBE_HOURLY_RETENTION_DAYS)
        dropped, _ = ProbeHour.objects.filter(hour__lt=expired).delete()
    return RollUp(probes_rolled_up=rolled_up, hours_dropped=dropped)
