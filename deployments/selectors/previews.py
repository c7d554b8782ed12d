"""Reads for preview pages: one query for the list, the latest deploy and whether the head
commit has a build annotated per row."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.shortcuts import get_object_or_404

from deployments.models import Build, Deploy, Preview


def _with_last_deploy(queryset: QuerySet[Preview]) -> QuerySet[Preview]:
    latest = Deploy.objects.filter(
        environment=OuterRef("environment"), kind=Deploy.Kind.PREVIEW
    ).order_by("-created_at", "-id")
    return queryset.annotate(
        last_deploy_id=Subquery(latest.values("id")[:1]),
        last_deploy_state=Subquery(latest.values("state")[:1]),
        last_deploy_at=Subquery(latest.values("created_at")[:1]),
        last_deploy_commit=Subquery(latest.values("commit_sha")[:1]),
        head_build_exists=Exists(
            Build.objects.filter(app=OuterRef("app"), commit_sha=OuterRef("head_sha"))
        ),
    )


def preview_list() -> QuerySet[Preview]:
    return _with_last_deploy(
        Preview.objects.select_related("app", "environment", "approved_by").order_by(
            "-updated_at", "-id"
        )
    )


PREVIEWS_PER_PAGE = 50
# What the Previews table, its actions and held notes read: not the environment (its row is
# wide) nor the comment, which only the preview's page shows.
PREVIEW_ROW_FIELDS = (
    "app__name",
    "pr_number",
    "pr_title",
    "pr_author",
    "branch",
    "head_sha",
    "is_fork",
    "is_draft",
    "url",
    "state",
    "secret_names",
    "approved_sha",
    "approved_by__username",
    "created_at",
)


def preview_page(*, page: str | int | None = 1) -> Page:
    """A page of previews, most recently updated first, with the columns their rows show; a
    page number out of range shows the last page, one that is not a number the first."""
    previews = (
        Preview.objects.select_related("app", "approved_by")
        .only(*PREVIEW_ROW_FIELDS)
        .order_by("-updated_at", "-id")
    )
    return Paginator(_with_last_deploy(previews), PREVIEWS_PER_PAGE).get_page(page)


def preview_get(*, pk: int) -> Preview:
    return get_object_or_404(preview_list(), pk=pk)


def preview_deploys(*, preview: Preview, pending: bool = False, limit: int = 10) -> list[Deploy]:
    """The preview's latest deploys, newest first; ``pending``: only those not finished."""
    if preview.environment_id is None:
        return []
    deploys = Deploy.objects.filter(environment_id=preview.environment_id, kind=Deploy.Kind.PREVIEW)
    if pending:
        deploys = deploys.exclude(state__in=Deploy.TERMINAL_STATES)
    return list(deploys.order_by("-created_at", "-id")[:limit])
