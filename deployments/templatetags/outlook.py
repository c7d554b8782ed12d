"""``{% outlook environment release kind deploy %}``: what a deploy would meet, said before it
happens (components/_outlook.html): the deploy it would wait behind and what will be live then,
the pending requests its approval would supersede, and afterwards the ones it superseded; a
deploy that would change nothing says so."""

from __future__ import annotations

from django import template
from django.forms import BoundField

from deployments.models import Deploy, Environment, Release
from deployments.selectors.queue import deploy_outlook
from hotdash.input_gate import parse_id

register = template.Library()


@register.inclusion_tag("components/_outlook.html")
def outlook(
    environment: Environment | None,
    release: Release | int | str | None,
    kind: str = Deploy.Kind.DEPLOY,
    deploy: Deploy | None = None,
    confirm: BoundField | None = None,
) -> dict:
    """``release`` may be a Release or its id (a request form's chosen value); ``deploy`` is the
    existing deploy, or None for a request not made yet; ``confirm`` is the request form's
    checkbox that confirms a deploy changing nothing, shown only then."""
    if environment is None:
        return {"outlook": None}
    if release and not isinstance(release, Release):
        pk = parse_id(release)
        release = Release.objects.filter(pk=pk, app_id=environment.app_id).first() if pk else None
    return {
        "outlook": deploy_outlook(
            environment=environment, release=release or None, kind=kind, deploy=deploy
        ),
        "existing": deploy is not None,
        "confirm": confirm,
    }
