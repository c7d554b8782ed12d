"""Reads for the Overview page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from deployments.models import App, Environment, Preview
from deployments.selectors.activity import Activity, activity_of, last_ran_id
from deployments.selectors.uptime import Uptime, uptime_list


@dataclass(frozen=True)
class EnvironmentSummary:
    """An environment's row, as plain values (the columns the row shows) and what it does."""

    id: int
    name: str
    fly_app_name: str
    region: str
    machine_count: int
    health: str
    drift: dict[str, Any]
    drift_checked_at: datetime | None
    uptime_state: str
    uptime_since: datetime | None
    locked_at: datetime | None
    lock_reason: str
    locked_by_name: str | None
    release_id: int | None
    release_tag: str | None
    release_bad_marked_at: datetime | None
    release_bad_reason: str | None
    activity: Activity
    pending_approvals: int
    uptime: Uptime


@dataclass(frozen=True)
class AppSummary:
    name: str
    github_full_name: str
    environments: list[EnvironmentSummary]
    active_previews: int


# A fleet of hundreds of apps is read a page at a time, or found by name: ten apps of up to a
# few environments each are already several screens (as on the Releases and Rollbacks pages).
APPS_PER_PAGE = 10
# What an environment's row shows (deployments.views.overview), named as EnvironmentSummary's
# fields: the rest of the environment's and its live release's wide rows is never read.
ENVIRONMENT_ROW_FIELDS = (
    "id",
    "app_id",
    "name",
    "fly_app_name",
    "region",
    "machine_count",
    "health",
    "drift",
    "drift_checked_at",
    "uptime_since",
    "locked_at",
    "lock_reason",
)
ENVIRONMENT_ROW_ALIASES = {
    "uptime_state": F("uptime"),
    "locked_by_name": F("locked_by__username"),
    "release_id": F("current_release_id"),
    "release_tag": F("current_release__tag"),
    "release_bad_marked_at": F("current_release__bad_marked_at"),
    "release_bad_reason": F("current_release__bad_reason"),
}


@dataclass(frozen=True)
class Overview:
    apps: list[AppSummary]
    page: Page
    # Something runs or waits in the worker's queue somewhere: the page keeps itself current.
    busy: bool


def overview_list(*, search: str = "", page: str | int = 1) -> Overview:
    """One page of apps by name (those whose name contains ``search``), each with its
    long-lived environments: live release, health, lock, the last deploy that ran, what runs
    now and what is queued, pending approvals, uptime. A fixed number of queries whatever the
    number of apps, environments and deploys. A page number out of range shows the last page."""
    active_previews = (
        Preview.objects.filter(app=OuterRef("pk"))
        .exclude(state=Preview.State.DESTROYED)
        .order_by()
        .values("app")
        .annotate(count=Count("pk"))
        .values("count")
    )
    matching = App.objects.filter(name__icontains=search) if search else App.objects.all()
    shown = Paginator(matching.order_by("name", "id").values("pk"), APPS_PER_PAGE).get_page(page)
    # Counted for the page's apps only (after the LIMIT), not grouped over every preview.
    apps = list(
        shown.object_list.values(
            "pk",
            "name",
            "github_owner",
            "github_repo",
            active_previews=Coalesce(Subquery(active_previews, output_field=IntegerField()), 0),
        )
    )
    rows = list(
        Environment.objects.filter(app__in=[app["pk"] for app in apps])
        .exclude(kind=Environment.Kind.PREVIEW)
        .order_by("kind", "name")
        .values(*ENVIRONMENT_ROW_FIELDS, **ENVIRONMENT_ROW_ALIASES, last_ran_id=last_ran_id())
    )
    activity = activity_of({row["id"]: row.pop("last_ran_id") for row in rows})
    uptimes = uptime_list(environment_ids=[row["id"] for row in rows], now=timezone.now())
    environments: dict[int, list[EnvironmentSummary]] = {app["pk"]: [] for app in apps}
    for row in rows:
        here = activity[row["id"]]
        environments[row.pop("app_id")].append(
            EnvironmentSummary(
                **row,
                activity=here,
                pending_approvals=len(here.awaiting),
                uptime=uptimes[row["id"]],
            )
        )
    summaries = [
        AppSummary(
            name=app["name"],
            github_full_name=f"{app['github_owner']}/{app['github_repo']}",
            environments=environments[app["pk"]],
            active_previews=app["active_previews"],
        )
        for app in apps
    ]
    return Overview(apps=summaries, page=shown, busy=any(here.busy for here in activity.values()))
