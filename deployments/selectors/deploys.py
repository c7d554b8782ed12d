"""Reads for deploy pages."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from deployments.models import Deploy


def deploy_list(*, limit: int = 100) -> QuerySet[Deploy]:
    return Deploy.objects.select_related(
        "environment__app", "release", "build", "requested_by"
    ).order_by("-created_at", "-id")[:limit]


def deploy_get(*, pk: int) -> Deploy:
    return get_object_or_404(
        Deploy.objects.select_related(
            "environment__app", "release", "previous_release", "requested_by", "rollback_of"
        ),
        pk=pk,
    )
