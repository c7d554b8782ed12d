"""Personal API tokens: shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.audit import record
from deployments.models import ApiToken

TOKEN_PREFIX = "hd_"


def _digest(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *, user: Any, name: str, actor: Any = None, ip: str | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the raw token (never stored)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:10], token_hash=_digest(raw))
    record(
        actor=actor or user,
        verb="api_token.created",
        target=token,
        data={"user": user.get_username(), "name": name, "prefix": token.prefix},
        ip=ip,
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: Any, ip: str | None = None) -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(
            actor=actor,
            verb="api_token.revoked",
            target=token,
            data={"user": token.user.get_username(), "prefix": token.prefix},
            ip=ip,
        )
    return token


def api_token_authenticate(*, raw_token: str) -> Any | None:
    """The active user owning ``raw_token``, or None. The lookup is by hash, not by value."""
    if not raw_token.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=_digest(raw_token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user
