"""Rollbacks: back to a known-good release through the deploy engine, and make it stick.

A rollback is a deploy of ``kind=rollback`` requested through deploy_request. Like every
request it changes nothing but itself until it is decided: only when the engine starts it
(``gates.rollback_hold``, in the claim's transaction) is the release rolled away from marked bad and
the environment locked, so nobody redeploys the bad version or ships something new from the
rollback's start until a person has looked. A rollback that is refused, rejected, expires or
is cancelled leaves both as they were.

An emergency rollback is the same rollback with ``emergency`` set: only an approver, only on
an environment in trouble (``environment_trouble``), only to the last healthy release, with
the app name typed as confirmation everywhere. It needs no approval, passes the lock and
freeze gates, and its plan is one batch with no verification window. A deploy running in the
environment stops after its current batch (superseded) rather than holding it back. It is audited
``rollback.emergency``, notified, and shown on the overview until an approver acknowledges it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import policy
from approvals.audit import record
from deployments.models import Deploy, Environment, Release
from deployments.selectors.environments import emergency_pre_empts, environment_trouble
from deployments.selectors.releases import live_healthy_versions, rollback_choices
from deployments.services.deploys import deploy_supersede
from deployments.services.gates import rollback_away
from deployments.services.notifications import notification_send
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


def emergency_rollback_refusal(
    *, environment: Environment, user: Any, release: Release | None = None
) -> Refused | None:
    """Why ``user`` may not roll ``environment`` back in an emergency (to ``release``, when
    one is named); None when they may. The pages use it to offer the button or say why not."""
    if not policy.can_approve(user):
        return Refused("not_approver", "Only approvers may start an emergency rollback.")
    trouble = environment_trouble(environment=environment)
    if not trouble:
        return Refused(
            "not_in_trouble",
            f"{environment} is not in trouble (its health is not failing, it is up and no "
            "deploy failed there in the last hour): use a normal rollback.",
        )
    last_healthy = rollback_choices(environment=environment).last_healthy
    if last_healthy is None:
        return Refused(
            "no_rollback_target",
            f"No release other than the live one was live and healthy in {environment} (or "
            "each is blocked): there is nothing to roll back to.",
        )
    if release is not None and release.pk != last_healthy.pk:
        return Refused(
            "invalid_target",
            f"An emergency rollback returns to the last healthy release in {environment}, "
            f"{last_healthy.tag}; roll back to {release.tag} through a normal rollback.",
            {"last_healthy": last_healthy.version},
        )
    return None


def _pre_empt(rollback: Deploy, *, actor: Any) -> int | None:
    """Stop the deploy an emergency rollback does not wait behind (after its current batch,
    superseded, audited); the rollback then takes every machine back. Its id, or None."""
    running = emergency_pre_empts(environment_id=rollback.environment_id)
    if running is None:
        return None
    deploy_supersede(old=running, new=rollback, actor=actor)
    return running.pk


def rollback_request(
    *,
    environment: Environment,
    release: Release,
    requested_by: Any,
    reason: str,
    confirmation: str = "",
    emergency: bool = False,
    ip: str | None = None,
) -> Deploy:
    """Roll ``environment`` back to ``release``. Production, and every emergency rollback,
    needs ``confirmation`` equal to the app name. Raises Refused (nothing created) like
    deploy_request."""
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
    if emergency:
        refusal = emergency_rollback_refusal(
            environment=environment, user=requested_by, release=release
        )
        if refusal is not None:
            raise refusal
    needs_confirmation = emergency or environment.kind == Environment.Kind.PRODUCTION
    if needs_confirmation and confirmation.strip() != app.name:
        what = "Emergency rollback" if emergency else "Rolling back production"
        raise Refused(
            "confirmation_required", f"{what}: type the app name ({app.name}) to confirm."
        )
    rolled_away = environment.current_release
    if rolled_away is not None and rolled_away.pk == release.pk:
        raise Refused("already_live", f"{release.tag} is already live in {environment.name}.")
    if emergency:
        trouble, fast = environment_trouble(environment=environment), True
        explanation = (
            f"Emergency: {trouble} An approver's confirmation is enough; every machine goes back "
            "at once, health is waited for at most the grace period and one check once they "
            "have started, and there is no verification window."
        )
    else:
        trouble = ""
        fast, explanation = fast_path_explanation(
            environment=environment,
            release=release,
            live_healthy=live_healthy_versions(environment=environment),
            user=requested_by,
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
                emergency=emergency,
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
            pre_empted = _pre_empt(deploy, actor=requested_by) if emergency else None
            record(
                actor=requested_by,
                verb="rollback.emergency" if emergency else "rollback.requested",
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
                    **({"trouble": trouble, "pre_empted": pre_empted} if emergency else {}),
                },
                ip=ip,
            )
            if emergency:
                notification_send(
                    deploy=deploy,
                    event="rollback.emergency",
                    detail=f"{requested_by.get_username()} rolls {environment.name} back from "
                    f"{rollback_away(deploy)} to {release.tag}, all machines at once: "
                    f"{reason.strip()} ({trouble})",
                )
    if refusal is not None:
        raise refusal
    return deploy


def emergency_rollback_acknowledge(*, deploy: Deploy, actor: Any, ip: str | None = None) -> Deploy:
    """An approver has seen the emergency rollback: it leaves the overview's banner."""
    if not policy.can_approve(actor):
        raise Refused("not_approver", "Only approvers may acknowledge an emergency rollback.")
    with transaction.atomic():
        locked = (
            Deploy.objects.select_for_update(of=("self",))
            .select_related("environment__app", "emergency_acknowledged_by")
            .get(pk=deploy.pk)
        )
        if not locked.emergency:
            raise Refused("not_emergency", f"Deploy #{locked.pk} is not an emergency rollback.")
        if locked.emergency_acknowledged_at is not None:
            who = locked.emergency_acknowledged_by.get_username()
            raise Refused(
                "already_acknowledged",
                f"Emergency rollback #{locked.pk} was already acknowledged by {who}.",
            )
        locked.emergency_acknowledged_at = timezone.now()
        locked.emergency_acknowledged_by = actor
        locked.save(update_fields=["emergency_acknowledged_at", "emergency_acknowledged_by"])
        record(
            actor=actor,
            verb="rollback.emergency_acknowledged",
            target=locked,
            scope=locked.environment,
            data={"state": locked.state},
            ip=ip,
        )
    return locked
