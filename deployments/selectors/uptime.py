"""Reads about the uptime probes: which environments to probe, and what the probes found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

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
class UptimeSummary:
    percent_24h: float | None  # none: no probe in the window
    percent_7d: float | None
    failures: list[Probe]  # the newest failed probes, newest first


def _percent(environment: Environment, since: datetime) -> float | None:
    probes = Probe.objects.filter(environment=environment, checked_at__gte=since)
    total = probes.count()
    return round(100 * probes.filter(ok=True).count() / total, 2) if total else None


def uptime_summary(*, environment: Environment, now: datetime, failures: int = 5) -> UptimeSummary:
    return UptimeSummary(
        percent_24h=_percent(environment, now - timedelta(hours=24)),
        percent_7d=_percent(environment, now - timedelta(days=7)),
        failures=list(
            Probe.objects.filter(environment=environment, ok=False).order_by("-checked_at", "-id")[
                :failures
            ]
        ),
    )
