"""Reads for the Overview page."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q
from django.utils import timezone

from deployments.models import App, Deploy, Environment, Preview
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


@dataclass(frozen=True)
class Overview:
    apps: list[AppSummary]
    # Something runs or waits in the worker's queue somewhere: the page keeps itself current.
    busy: bool


def overview_list() -> Overview:
    """Every app with its long-lived environments: live release, health, lock, the last deploy
    that ran, what runs now and what is queued, pending approvals, uptime. Seven queries
    whatever the number of apps and environments."""
    environments = (
        Environment.objects.exclude(kind=Environment.Kind.PREVIEW)
        .select_related("current_release", "locked_by")
        .annotate(
            pending_approvals=Count(
                "deploys", filter=Q(deploys__state=Deploy.State.AWAITING_APPROVAL)
            ),
        )
        .order_by("kind", "name")
    )
    apps = list(
        App.objects.prefetch_related(Prefetch("environments", queryset=environments)).annotate(
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
                    pending_approvals=env.pending_approvals,
                    uptime=uptimes[env.pk],
                )
                for env in app.environments.all()
            ],
            active_previews=app.active_previews,
        )
        for app in apps
    ]
    return Overview(apps=summaries, busy=any(here.busy for here in activity.values()))
