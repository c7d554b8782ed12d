"""Reads for the profile page's token list."""

from __future__ import annotations

from typing import Any

from deployments.models import ApiToken


def api_token_list(*, user: Any) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user).order_by("-created_at", "-id"))
