"""Reads about the uptime probes: which environments to probe, and what the probes found."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncHour

from deployments.models import Environment, Preview, Probe


def probe_targets() -> list[Environment]:
    """Every environment with something deployed to probe: production and staging, and
    previews that are running (asleep, creating or destroyed ones are skipped)."""
    return list(
        Environment.objects.select_related("app")
        .exclude(current_image_ref="")
        .filter(~Q(kind=Environment.Kind.PREVIEW) | Q(preview__state=Preview.State.RUNNING))
        .order_by("pk")
    )


def probe_recent_outcomes(*, environment_id: int, limit: int) -> list[bool]:
    """Whether each of the environment's newest ``limit`` probes succeeded, newest first."""
    return list(
        Probe.objects.filter(environment_id=environment_id)
        .order_by("-checked_at", "-id")
        .values_list("ok", flat=True)[:limit]
    )


@dataclass(frozen=True)
class Uptime:
    percent_24h: float | None  # none: no probe in the window
    percent_7d: float | None
    # The mean probe latency of each hour of the last 24 with a probe, oldest first.
    hourly_latency_ms: list[int]


def _percent(ok: int, total: int) -> float | None:
    return round(100 * ok / total, 2) if total else None


def uptime_list(*, environment_ids: list[int], now: datetime) -> dict[int, Uptime]:
    """Uptime over 24 h and 7 d and the hourly latency of the last 24 h for each environment:
    two queries however many environments."""
    day, week = now - timedelta(hours=24), now - timedelta(days=7)
    recent = Probe.objects.filter(environment_id__in=environment_ids, checked_at__lte=now)
    in_day = Q(checked_at__gt=day)
    counts = {
        row["environment_id"]: row
        for row in recent.filter(checked_at__gt=week)
        .values("environment_id")
        .annotate(
            week_total=Count("id"),
            week_ok=Count("id", filter=Q(ok=True)),
            day_total=Count("id", filter=in_day),
            day_ok=Count("id", filter=in_day & Q(ok=True)),
        )
        .order_by()
    }
    hourly: dict[int, list[int]] = defaultdict(list)
    for row in (
        recent.filter(in_day)
        .annotate(hour=TruncHour("checked_at"))
        .values("environment_id", "hour")
        .annotate(latency=Avg("latency_ms"))
        .order_by("environment_id", "hour")
    ):
        hourly[row["environment_id"]].append(round(row["latency"]))
    uptimes = {}
    for pk in environment_ids:
        row = counts.get(pk, {"week_total": 0, "week_ok": 0, "day_total": 0, "day_ok": 0})
        uptimes[pk] = Uptime(
            percent_24h=_percent(row["day_ok"], row["day_total"]),
            percent_7d=_percent(row["week_ok"], row["week_total"]),
            hourly_latency_ms=hourly[pk],
        )
    return uptimes


def uptime_failures(*, environment: Environment, limit: int = 10) -> list[Probe]:
    """The environment's newest failed probes, newest first."""
    return list(
        Probe.objects.filter(environment=environment, ok=False).order_by("-checked_at", "-id")[
            :limit
        ]
    )
