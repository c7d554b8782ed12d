"""``{% promotion environment release %}``: the environment's promotion rule for the release as a
condition with its state (components/_promotion.html); nothing when there is no rule."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from deployments.models import Deploy, Environment, Release
from deployments.selectors.promotion import promotion_check
from hotdash.input_gate import parse_id

register = template.Library()


@register.inclusion_tag("components/_promotion.html")
def promotion(
    environment: Environment | None,
    release: Release | int | str | None,
    kind: str = Deploy.Kind.DEPLOY,
) -> dict:
    """``release`` may be a Release or its id (a request form's chosen value); the rule holds
    deploys only, not rollbacks."""
    found: Any = release
    if kind != Deploy.Kind.DEPLOY:
        return {"promotion": None}
    if environment is not None and release and not isinstance(release, Release):
        pk = parse_id(release)
        found = Release.objects.filter(pk=pk, app_id=environment.app_id).first() if pk else None
    if environment is None or not isinstance(found, Release):
        return {"promotion": None}
    return {
        "promotion": promotion_check(environment=environment, release=found, now=timezone.now())
    }
