"""Reads about the time zone each person reads times in."""

from __future__ import annotations

from typing import Any

from deployments.models import TimeZonePreference

DEFAULT_TIME_ZONE = "UTC"


def user_time_zone(*, user: Any) -> str:
    """The zone ``user`` chose on /profile/, UTC unless they chose."""
    chosen = (
        TimeZonePreference.objects.filter(user_id=user.pk)
        .values_list("time_zone", flat=True)
        .first()
    )
    return chosen or DEFAULT_TIME_ZONE
