"""Reads about who is e-mailed what."""

from __future__ import annotations

from typing import Any

from deployments.models import EmailPreference


def email_muted_events(*, user: Any) -> frozenset[str]:
    """The events ``user`` chose not to be e-mailed about (none unless they chose)."""
    muted = (
        EmailPreference.objects.filter(user_id=user.pk)
        .values_list("muted_events", flat=True)
        .first()
    )
    return frozenset(muted or ())
