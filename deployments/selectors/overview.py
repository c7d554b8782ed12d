"""Reads for the Overview page."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, OuterRef, Prefetch, Q, Subquery

from deployments.models import App, Deploy, Environment, Preview


@dataclass(frozen=True)
class EnvironmentSummary:
    environment: Environment
    last_deploy: Deploy | None
    pending_approvals: int


@dataclass(frozen=True)
class AppSummary:
    app: App
    environments: list[EnvironmentSummary]
    active_previews: int


def overview_list() -> list[AppSummary]:
    """Every app with its long-lived environments: live release, health, lock, last deploy,
    pending approvals. Four queries whatever the number of apps and environments."""
    latest_deploy = Deploy.objects.filter(environment=OuterRef("pk")).order_by("-created_at", "-id")
    environments = (
        Environment.objects.exclude(kind=Environment.Kind.PREVIEW)
        .select_related("current_release", "locked_by")
        .annotate(
            last_deploy_id=Subquery(latest_deploy.values("id")[:1]),
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
    deploy_ids = [env.last_deploy_id for app in apps for env in app.environments.all()]
    deploys = Deploy.objects.select_related("release", "requested_by").in_bulk(
        [pk for pk in deploy_ids if pk]
    )
    return [
        AppSummary(
            app=app,
            environments=[
                EnvironmentSummary(
                    environment=env,
                    last_deploy=deploys.get(env.last_deploy_id),
                    pending_approvals=env.pending_approvals,
                )
                for env in app.environments.all()
            ],
            active_previews=app.active_previews,
        )
        for app in apps
    ]
