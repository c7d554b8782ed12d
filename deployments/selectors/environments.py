"""Reads for the environment page."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from deployments.models import Deploy, Environment, FreezeWindow, Release


def environment_detail_get(*, pk: int) -> Environment:
    return get_object_or_404(
        Environment.objects.select_related("app", "current_release", "locked_by"), pk=pk
    )


def environment_recent_deploys(*, environment: Environment, limit: int = 10) -> list[tuple]:
    """The environment's newest deploys, newest first, as what its table shows: named tuples
    of id, release_tag (None for an image deploy), image_ref, kind, state, requester_name and
    created_at."""
    return list(
        environment.deploys.annotate(
            release_tag=F("release__tag"),
            requester_name=Coalesce("requested_by__username", "requested_by_system"),
        )
        .order_by("-created_at", "-id")
        .values_list(
            "id",
            "release_tag",
            "image_ref",
            "kind",
            "state",
            "requester_name",
            "created_at",
            named=True,
        )[:limit]
    )


def environment_deployable_releases(*, environment: Environment, limit: int = 5) -> list[Release]:
    """The newest releases that could be requested here (valid, not bad, not deleted), each
    with its last deploy here (``last_here_id``/``last_here_state``) so that a release that
    just failed here does not look like a fresh choice."""
    last_here = Deploy.objects.filter(
        environment=environment, release=OuterRef("pk"), kind=Deploy.Kind.DEPLOY
    ).order_by("-created_at", "-id")
    return list(
        Release.objects.annotate(
            last_here_id=Subquery(last_here.values("id")[:1]),
            last_here_state=Subquery(last_here.values("state")[:1]),
        )
        .filter(
            app_id=environment.app_id,
            validation=Release.Validation.VALID,
            bad_marked_at__isnull=True,
            deleted_on_github_at__isnull=True,
        )
        .exclude(pk=environment.current_release_id)
        .only("tag")
        .order_by("-published_at", "-id")[:limit]
    )


def environment_config_releases(*, environment: Environment, limit: int = 10) -> list[Release]:
    """The newest releases whose tag a fly.toml can be read at (not deleted on GitHub)."""
    return list(
        Release.objects.filter(app_id=environment.app_id, deleted_on_github_at__isnull=True)
        .exclude(validation=Release.Validation.REJECTED)
        .only("tag")
        .order_by("-published_at", "-id")[:limit]
    )


def environment_bad_releases(*, environment: Environment) -> list[Release]:
    """Releases of the environment's app that are marked bad (blocked until cleared)."""
    return list(
        Release.objects.filter(app_id=environment.app_id, bad_marked_at__isnull=False)
        .select_related("bad_marked_by")
        .only("tag", "bad_reason", "bad_marked_by__username")
        .order_by("-bad_marked_at")
    )


def environment_freeze_windows(*, environment: Environment) -> list[FreezeWindow]:
    """Current and upcoming windows."""
    return freeze_windows_by_environment(environments=[environment])[environment.pk]


def freeze_windows_by_environment(
    *, environments: list[Environment]
) -> dict[int, list[FreezeWindow]]:
    """Current and upcoming windows of each environment (by id), in one query."""
    windows: dict[int, list[FreezeWindow]] = {environment.pk: [] for environment in environments}
    for window in FreezeWindow.objects.filter(
        environment__in=environments, ends_at__gt=timezone.now()
    ):
        windows[window.environment_id].append(window)
    return windows


TROUBLE_FAILED_DEPLOY_WINDOW = timedelta(hours=1)


def environment_trouble(*, environment: Environment, now: datetime | None = None) -> str:
    """Why ``environment`` is in trouble (what allows an emergency rollback), as a sentence;
    "" when it is not: its health is failing, its public health URL is down, or a deploy
    failed there in the last hour."""
    if environment.health == Environment.Health.FAILING:
        return f"{environment}'s health is failing."
    if environment.uptime == Environment.Uptime.DOWN:
        return f"{environment} is down: its public health URL is not answering."
    now = now or timezone.now()
    failed = (
        environment.deploys.filter(
            state=Deploy.State.FAILED, finished_at__gte=now - TROUBLE_FAILED_DEPLOY_WINDOW
        )
        .order_by("-finished_at", "-id")
        .first()
    )
    if failed is not None:
        minutes = int((now - failed.finished_at).total_seconds() // 60)
        return f"Deploy #{failed.pk} failed here {minutes} min ago: {failed.error or 'no error'}"
    return ""


def emergency_pre_empts(*, environment_id: int) -> Deploy | None:
    """The deploy running in the environment that an emergency rollback would stop after its
    current batch rather than wait behind; an automatic rollback running is left to finish."""
    return (
        Deploy.objects.filter(
            environment_id=environment_id,
            state__in=Deploy.ACTIVE_STATES,
            kind=Deploy.Kind.DEPLOY,
        )
        .select_related("release")
        .order_by("pk")
        .first()
    )


def emergency_rollbacks_unacknowledged() -> list[Deploy]:
    """Emergency rollbacks nobody has acknowledged yet, newest first (the overview's banner)."""
    return list(
        Deploy.objects.filter(emergency=True, emergency_acknowledged_at__isnull=True)
        .select_related("environment__app", "release", "previous_release", "requested_by")
        # What the banner shows: the rest of these wide rows is never read.
        .only(
            "state",
            "reason",
            "image_ref",
            "previous_image_ref",
            "requested_by_system",
            "created_at",
            "environment__name",
            "environment__app__name",
            "release__tag",
            "previous_release__tag",
            "requested_by__username",
        )
        .order_by("-created_at", "-id")
    )
