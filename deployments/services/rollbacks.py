"""Rollbacks: back to a known-good release through the deploy engine, and make it stick.

A rollback is a deploy of ``kind=rollback`` requested through deploy_request. Like every
request it changes nothing but itself until it is decided: only when the engine starts it
(``gates.rollback_hold``, in the claim's transaction) is the release rolled away from marked bad and
the environment locked, so nobody redeploys the bad version or ships something new from the
rollback's start until a person has looked. A rollback that is refused, rejected, expires or
is cancelled leaves both as they were.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from approvals import policy
from approvals.audit import record
from deployments.models import Deploy, Environment, Release
from deployments.selectors.releases import live_healthy_versions
from deployments.services.gates import rollback_away
from deployments.services.requests import deploy_request
from hotdash.errors import Refused


def fast_path_explanation(
    *, environment: Environment, release: Release, live_healthy: list[str], user: Any
) -> tuple[bool, str]:
    """Whether the rollback may skip approvals, and why (shown before and after asking)."""
    allowed = policy.rollback_fast_path_allowed(
        environment=environment,
        target_release=release,
        live_healthy_versions=live_healthy,
        user=user,
    )
    if allowed:
        return True, (
            f"Fast path: {release.tag} was live and healthy in {environment.name}; your "
            "confirmation as an approver is enough (audited as a fast-path rollback)."
        )
    needed = environment.approvals_required
    if not environment.rollback_fast_path:
        why = f"the fast path is switched off for {environment.name}"
    elif release.version not in live_healthy:
        why = f"{release.tag} was never live and healthy in {environment.name}"
    else:
        why = "only approvers may use the fast path"
    return False, f"No fast path: {why}; the rollback needs {needed} approval(s)."


def rollback_request(
    *,
    environment: Environment,
    release: Release,
    requested_by: Any,
    reason: str,
    confirmation: str = "",
    ip: str | None = None,
) -> Deploy:
    """Roll ``environment`` back to ``release``. Production needs ``confirmation`` equal to
    the app name. Raises Refused (nothing created) like deploy_request."""
    environment = Environment.objects.select_related("app", "current_release").get(
        pk=environment.pk
    )
    app = environment.app
    if release.app_id != app.pk:
        raise Refused("invalid_target", f"{release} is not a release of {app.name}.")
    if not policy.can_request_deploy(requested_by):
        raise Refused("forbidden", "Your role does not allow requesting rollbacks.")
    if not reason.strip():
        raise Refused("reason_required", "Say why you are rolling back: a reason is required.")
    if environment.kind == Environment.Kind.PRODUCTION and confirmation.strip() != app.name:
        raise Refused(
            "confirmation_required",
            f"Rolling back production: type the app name ({app.name}) to confirm.",
        )
    rolled_away = environment.current_release
    if rolled_away is not None and rolled_away.pk == release.pk:
        raise Refused("already_live", f"{release.tag} is already live in {environment.name}.")
    live_healthy = live_healthy_versions(environment=environment)
    fast, explanation = fast_path_explanation(
        environment=environment, release=release, live_healthy=live_healthy, user=requested_by
    )
    refusal: Refused | None = None
    # One transaction: the rollback and its audit event commit together (the run message is
    # sent on commit). A refusal's audit event commits on its own.
    with transaction.atomic():
        try:
            deploy = deploy_request(
                environment=environment,
                release=release,
                kind=Deploy.Kind.ROLLBACK,
                requested_by=requested_by,
                reason=reason,
                fast_path=fast,
                ip=ip,
            )
        except Refused as error:
            refusal = error
        else:
            rolled_back = (
                environment.deploys.filter(
                    state=Deploy.State.SUCCEEDED, release=rolled_away
                ).first()
                if rolled_away
                else None
            )
            Deploy.objects.filter(pk=deploy.pk).update(rollback_of=rolled_back)
            deploy.rollback_of = rolled_back
            record(
                actor=requested_by,
                verb="rollback.requested",
                target=deploy,
                app=app.name,
                environment=environment.name,
                data={
                    "from": rollback_away(deploy),
                    "to": release.tag,
                    "reason": reason.strip(),
                    "fast_path": fast,
                    "policy": explanation,
                    "state": deploy.state,
                    "on_start": deploy.rollback_hold.summary,
                },
                ip=ip,
            )
    if refusal is not None:
        raise refusal
    return deploy
