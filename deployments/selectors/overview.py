"""Reads for the Overview page."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from deployments.models import App, Environment, Preview
from deployments.selectors.activity import Activity, environment_activity
from deployments.selectors.uptime import Uptime, uptime_list


@dataclass(frozen=True)
class EnvironmentSummary:
    environment: Environment
    activity: Activity
    pending_approvals: int
    uptime: Uptime


@dataclass(frozen=True)
class AppSummary:
    app: App
    environments: list[EnvironmentSummary]
    active_previews: int


# A fleet of hundreds of apps is read a page at a time, or found by name.
APPS_PER_PAGE = 20
# What an environment's row shows (deployments.views.overview): the rest of the environment's
# and its live release's wide rows is never read.
ENVIRONMENT_ROW_FIELDS = (
    "app",
    "name",
    "kind",
    "fly_app_name",
    "region",
    "machine_count",
    "health",
    "drift",
    "drift_checked_at",
    "uptime",
    "uptime_since",
    "locked_at",
    "lock_reason",
    "locked_by__username",
    "current_release__tag",
    "current_release__bad_marked_at",
    "current_release__bad_reason",
)


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
    environments = (
        Environment.objects.exclude(kind=Environment.Kind.PREVIEW)
        .select_related("current_release", "locked_by")
        .only(*ENVIRONMENT_ROW_FIELDS)
        .order_by("kind", "name")
    )
    matching = App.objects.filter(name__icontains=search) if search else App.objects.all()
    shown = Paginator(matching.order_by("name", "id"), APPS_PER_PAGE).get_page(page)
    apps = list(
        shown.object_list.prefetch_related(
            Prefetch("environments", queryset=environments)
        ).annotate(
            active_previews=Count(
                "previews", filter=~Q(previews__state=Preview.State.DESTROYED), distinct=True
            )
        )
    )
    environment_ids = [env.pk for app in apps for env in app.environments.all()]
    activity = environment_activity(environment_ids=environment_ids)
    uptimes = uptime_list(environment_ids=environment_ids, now=timezone.now())
    summaries = [
        AppSummary(
            app=app,
            environments=[
                EnvironmentSummary(
                    environment=env,
                    activity=activity[env.pk],
                    pending_approvals=len(activity[env.pk].awaiting),
                    uptime=uptimes[env.pk],
                )
                for env in app.environments.all()
            ],
            active_previews=app.active_previews,
        )
        for app in apps
    ]
    return Overview(apps=summaries, page=shown, busy=any(here.busy for here in activity.values()))
