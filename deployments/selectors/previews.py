"""Reads for preview pages."""

from __future__ import annotations

from django.db.models import QuerySet

from deployments.models import Preview


def preview_list() -> QuerySet[Preview]:
    return Preview.objects.select_related("app", "environment").order_by("-updated_at")
