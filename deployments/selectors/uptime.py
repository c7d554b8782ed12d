"""Reads about the uptime probes: which environments to probe, and what the probes found."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncHour

from deployments.models import Environment, Preview, Probe, ProbeHour


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


def hour_start(at: datetime) -> datetime:
    """The start of the UTC hour ``at`` falls in (probes are rolled up by UTC hour)."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def probe_hourly_totals(probes: QuerySet[Probe]) -> QuerySet:
    """``probes`` summed per environment and UTC hour: environment_id, hour, probes,
    successes and latency_ms_total — the columns of a ProbeHour."""
    return (
        probes.annotate(hour=TruncHour("checked_at", tzinfo=UTC))
        .values("environment_id", "hour")
        .annotate(
            probes=Count("id"),
            successes=Count("id", filter=Q(ok=True)),
            latency_ms_total=Sum("latency_ms"),
        )
        .order_by("environment_id", "hour")
    )


@dataclass(frozen=True)
class Uptime:
    percent_24h: float | None  # none: no probe in the window
    percent_7d: float | None
    # The mean probe latency of each hour of the last 24 with a probe, oldest first.
    hourly_latency_ms: list[int]


_WINDOW_TOTALS = ("week_total", "week_ok", "day_total", "day_ok")


def _percent(ok: int, total: int) -> float | None:
    return round(100 * ok / total, 2) if total else None


def uptime_list(*, environment_ids: list[int], now: datetime) -> dict[int, Uptime]:
    """Uptime over 24 h and 7 d and the hourly latency of the last 24 h for each environment,
    from the raw probes and the hourly roll-ups of older ones alike: two queries however many
    environments, one when none of them was probed in the last 24 h.

    Both windows start on the hour (the one 24 h, or 7 d, before ``now`` falls in): a rolled-up
    hour is counted whole or not at all, so this starts the raw rows' window there too, and the
    figures are the same before and after a roll-up."""
    day, week = hour_start(now - timedelta(hours=24)), hour_start(now - timedelta(days=7))
    raw = Probe.objects.filter(
        environment_id__in=environment_ids, checked_at__gte=week, checked_at__lte=now
    )
    rolled = ProbeHour.objects.filter(
        environment_id__in=environment_ids, hour__gte=week, hour__lte=now
    )
    raw_in_day, rolled_in_day = Q(checked_at__gte=day), Q(hour__gte=day)
    # Each query is a UNION of the raw side and the rolled-up side, in the same columns.
    window_totals = raw.values("environment_id").annotate(
        week_total=Count("id"),
        week_ok=Count("id", filter=Q(ok=True)),
        day_total=Count("id", filter=raw_in_day),
        day_ok=Count("id", filter=raw_in_day & Q(ok=True)),
    )
    rolled_window_totals = rolled.values("environment_id").annotate(
        week_total=Sum("probes"),
        week_ok=Sum("successes"),
        day_total=Coalesce(Sum("probes", filter=rolled_in_day), 0),
        day_ok=Coalesce(Sum("successes", filter=rolled_in_day), 0),
    )
    counts: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_WINDOW_TOTALS, 0))
    for row in window_totals.order_by().union(rolled_window_totals.order_by(), all=True):
        for name in _WINDOW_TOTALS:
            counts[row["environment_id"]][name] += row[name]
    # Per environment and hour: [latency_ms_total, probes].
    latency: dict[int, dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    # None of them probed in the last 24 h: no hour to read.
    if any(row["day_total"] for row in counts.values()):
        hours = (
            probe_hourly_totals(raw.filter(raw_in_day))
            .order_by()
            .union(
                rolled.filter(rolled_in_day).values(
                    "environment_id", "hour", "probes", "successes", "latency_ms_total"
                ),
                all=True,
            )
        )
        for row in hours:
            totals = latency[row["environment_id"]][row["hour"]]
            totals[0] += row["latency_ms_total"]
            totals[1] += row["probes"]
    uptimes = {}
    for pk in environment_ids:
        row = counts[pk]
        uptimes[pk] = Uptime(
            percent_24h=_percent(row["day_ok"], row["day_total"]),
            percent_7d=_percent(row["week_ok"], row["week_total"]),
            hourly_latency_ms=[
                round(total / probes) for _, (total, probes) in sorted(latency[pk].items())
            ],
        )
    return uptimes


def uptime_failures(*, environment: Environment, limit: int = 10) -> list[Probe]:
    """The environment's newest failed probes, newest first."""
    return list(
        Probe.objects.filter(environment=environment, ok=False).order_by("-checked_at", "-id")[
            :limit
        ]
    )
