"""What lets a deploy start, checked when it is requested and again when a worker claims it:
the environment's lock and freeze windows; and the hold a person's rollback puts on its
environment as it starts."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from deployments.models import Deploy, Environment, FreezeWindow
from deployments.services.environments import environment_lock
from deployments.services.releases import release_mark_bad
from hotdash.errors import Refused


def freeze_window_active(*, environment: Environment, at: Any = None) -> FreezeWindow | None:
    at = at or timezone.now()
    return environment.freeze_windows.filter(starts_at__lte=at, ends_at__gt=at).first()


def deploy_gate_refusal(
    *, environment: Environment, applied: set[str], kind: str, now: Any
) -> Refused | None:
    """Lock and freeze-window gates (cheap, re-run under the environment's row lock)."""
    if kind == Deploy.Kind.AUTO_ROLLBACK:
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
    return None


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
