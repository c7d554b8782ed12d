"""What lets a deploy start, checked when it is requested and again when a worker claims it:
the environment's lock, freeze windows and promotion rule; and the hold a person's rollback
puts on its environment as it starts."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from deployments.models import Deploy, Environment, FreezeWindow, Release
from deployments.selectors.promotion import promotion_check, promotion_checks
from deployments.selectors.releases import release_blockers
from deployments.services.environments import environment_lock
from deployments.services.releases import release_mark_bad
from hotdash.errors import Refused


def freeze_window_active(*, environment: Environment, at: Any = None) -> FreezeWindow | None:
    at = at or timezone.now()
    return environment.freeze_windows.filter(starts_at__lte=at, ends_at__gt=at).first()


def deploy_gate_refusal(
    *,
    environment: Environment,
    applied: set[str],
    kind: str,
    now: Any,
    release: Release | None = None,
    emergency: bool = False,
) -> Refused | None:
    """Lock, freeze-window and promotion gates (cheap, re-run under the environment's row
    lock). The promotion rule applies to a deploy of ``release`` (not to rollbacks, which go
    back to what ran here, nor to previews). Automatic and emergency rollbacks pass every
    gate: they are the way out of the trouble a lock or freeze would hold the environment in."""
    if kind == Deploy.Kind.AUTO_ROLLBACK or emergency:
        return None
    if environment.is_locked and "lock" not in applied:
        who = environment.locked_by.get_username() if environment.locked_by else "system"
        return Refused(
            "environment_locked",
            f"{environment} is locked by {who} since "
            f"{environment.locked_at:%Y-%m-%d %H:%M} UTC: {environment.lock_reason}",
            {
                "locked_by": who,
                "lock_reason": environment.lock_reason,
                "locked_at": environment.locked_at.isoformat(),
            },
        )
    window = freeze_window_active(environment=environment, at=now)
    if window is not None and "freeze_window" not in applied:
        return Refused(
            "freeze_window",
            f"{environment} is in a freeze window until {window.ends_at:%Y-%m-%d %H:%M} UTC: "
            f"{window.reason}",
            {
                "window_reason": window.reason,
                "starts_at": window.starts_at.isoformat(),
                "ends_at": window.ends_at.isoformat(),
            },
        )
    if kind == Deploy.Kind.DEPLOY and release is not None and "promotion" not in applied:
        return promotion_refusal(environment=environment, release=release, now=now)
    return None


def promotion_refusal(*, environment: Environment, release: Release, now: Any) -> Refused | None:
    """``promotion_required`` naming what is missing, unless the rule is met (or there is none)."""
    promotion = promotion_check(environment=environment, release=release, now=now)
    if promotion is None or promotion.met:
        return None
    rehearsal, broken_by = promotion.rehearsal, promotion.broken_by
    return Refused(
        "promotion_required",
        promotion.missing,
        {
            "previous_environment": promotion.previous.name,
            "min_healthy_minutes": promotion.min_minutes,
            "healthy_minutes": promotion.healthy_minutes,
            "rehearsal_deploy": rehearsal.pk if rehearsal else None,
            "broken_by_deploy": broken_by.pk if broken_by else None,
        },
    )


def release_deploy_refusals(
    *, environment: Environment, releases: list[Release], now: Any
) -> dict[int, list[str]]:
    """Why a deploy of each of ``releases`` to ``environment`` would be refused now, one
    sentence each, by release id ([] when it may go): what keeps the release from any deploy,
    the environment's lock or freeze window, and its promotion rule. CI checks are not read
    (that asks GitHub); a request still checks them. A fixed number of queries."""
    gate = deploy_gate_refusal(
        environment=environment, applied=set(), kind=Deploy.Kind.DEPLOY, now=now
    )
    promotions = promotion_checks(environment=environment, releases=releases, now=now)
    refusals = {}
    for release in releases:
        promotion = promotions.get(release.pk)
        refusals[release.pk] = [
            *release_blockers(release),
            *([gate.message] if gate else []),
            *([promotion.missing] if promotion and not promotion.met else []),
        ]
    return refusals


def rollback_away(deploy: Deploy) -> str:
    """What the rollback replaces, as it was live when it was requested."""
    if deploy.previous_release is not None:
        return deploy.previous_release.tag
    return deploy.previous_image_ref or "nothing"


def rollback_hold(*, deploy: Deploy) -> None:
    """Apply what a person's rollback implies, as it starts: mark the release it rolls away
    from (live when it was requested, as its approvers saw) bad and lock the environment.

    The engine calls this inside the transaction that claims the rollback, holding the
    environment's row, so the start, the mark and the lock commit together: no other claim or
    request sees the rollback started without them. Both are audited (``release.marked_bad``
    by the requester, whose judgement it is; ``environment.locked`` by the system).
    """
    who = deploy.requester_name
    reason = deploy.reason.strip()
    if deploy.previous_release is not None:
        release_mark_bad(
            release=deploy.previous_release,
            actor=deploy.requested_by,
            reason=f"Rolled back in {deploy.environment.name} by {who} "
            f"(rollback #{deploy.pk}): {reason}",
        )
    target = deploy.release.tag if deploy.release else deploy.image_ref
    environment_lock(
        environment=deploy.environment,
        actor="system",
        reason=f"Rolled back from {rollback_away(deploy)} to {target} by {who} (rollback "
        f"#{deploy.pk}): {reason}. Unlock once the incident is understood.",
    )
