"""The time zone a person reads times in, chosen on /profile/."""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import available_timezones

from django.db import transaction
from django.utils import timezone

from approvals.audit import record
from deployments.models import TimeZonePreference
from deployments.selectors.time_zones import DEFAULT_TIME_ZONE
from hotdash.errors import Refused


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every zone this machine's tz database knows, sorted (UTC among them)."""
    return tuple(sorted(available_timezones() | {DEFAULT_TIME_ZONE}))


def time_zone_set(*, user: Any, time_zone: str, ip: str | None = None) -> TimeZonePreference:
    """Show ``user`` every time in ``time_zone`` (an IANA name, e.g. ``Europe/Paris``).
    Audited when it changes; saving the same zone writes nothing."""
    if time_zone not in time_zone_names():
        raise Refused(
            "unknown_time_zone",
            f"“{time_zone}” is not a time zone HotDash knows; choose one from the list, "
            "e.g. Europe/Paris or UTC.",
        )
    with transaction.atomic():
        preference = TimeZonePreference.objects.select_for_update().filter(user=user).first()
        before = preference.time_zone if preference else DEFAULT_TIME_ZONE
        if preference and before == time_zone:
            return preference
        preference = preference or TimeZonePreference(user=user)
        preference.time_zone = time_zone
        preference.updated_at = timezone.now()
        preference.save()
        record(
            actor=user,
            verb="profile.time_zone_changed",
            target=preference,
            data={"from": before, "to": time_zone},
            ip=ip,
        )
    return preference
