"""Reads for release pages."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from deployments.models import Deploy, Release


def release_list() -> QuerySet[Release]:
    return Release.objects.select_related("app").order_by("app__name", "-published_at", "-id")


def release_get(*, pk: int) -> Release:
    return get_object_or_404(Release.objects.select_related("app"), pk=pk)


def rollback_list(*, limit: int = 100) -> QuerySet[Deploy]:
    kinds = [Deploy.Kind.ROLLBACK, Deploy.Kind.AUTO_ROLLBACK]
    return (
        Deploy.objects.filter(kind__in=kinds)
        .select_related("environment__app", "release", "previous_release", "requested_by")
        .order_by("-created_at", "-id")[:limit]
    )
