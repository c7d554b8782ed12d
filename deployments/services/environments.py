"""Environment locks and freeze windows (who may deploy when); the machines Fly runs now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import policy
from approvals.audit import record
from deployments.models import Environment, FreezeWindow
from hotdash.errors import Refused
from hotdash.integrations import PermanentAPIError, fly_client
from hotdash.integrations.fly import Machine


def _check(actor: Any, reason: str) -> None:
    if not isinstance(actor, str) and not policy.can_lock(actor):
        raise Refused("forbidden", "Only admins may change locks and windows.")
    if not reason.strip():
        raise Refused("reason_required", "A reason is required.")


def _audit(*, environment: Environment, actor: Any, verb: str, data: dict, ip: str | None) -> None:
    record(
        actor=actor,
        verb=verb,
        target=environment,
        scope=environment,
        data=data,
        ip=ip,
    )


@transaction.atomic
def environment_lock(
    *, environment: Environment, actor: Any, reason: str, ip: str | None = None
) -> Environment:
    """Lock the environment against deploys (admins, or the system after a rollback).

    Locking a locked environment replaces holder and reason (audited as a new lock).
    """
    _check(actor, reason)
    env = Environment.objects.select_for_update().select_related("app").get(pk=environment.pk)
    env.locked_at = timezone.now()
    env.locked_by = None if isinstance(actor, str) else actor
    env.lock_reason = reason.strip()
    env.save(update_fields=["locked_at", "locked_by", "lock_reason"])
    _audit(environment=env, actor=actor, verb="environment.locked", data={"reason": reason}, ip=ip)
    return env


@transaction.atomic
def environment_unlock(
    *, environment: Environment, actor: Any, reason: str, ip: str | None = None
) -> Environment:
    """Lift the lock; unlocking an unlocked environment changes nothing and records nothing."""
    _check(actor, reason)
    env = Environment.objects.select_for_update().select_related("app").get(pk=environment.pk)
    if not env.is_locked:
        return env
    previous = {"locked_at": env.locked_at, "lock_reason": env.lock_reason}
    env.locked_at, env.locked_by, env.lock_reason = None, None, ""
    env.save(update_fields=["locked_at", "locked_by", "lock_reason"])
    _audit(
        environment=env,
        actor=actor,
        verb="environment.unlocked",
        data={"reason": reason, **previous},
        ip=ip,
    )
    return env


@transaction.atomic
def freeze_window_add(
    *,
    environment: Environment,
    actor: Any,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    ip: str | None = None,
) -> FreezeWindow:
    _check(actor, reason)
    if ends_at <= starts_at:
        raise Refused("invalid_window", "A freeze window must end after it starts.")
    env = Environment.objects.select_for_update().select_related("app").get(pk=environment.pk)
    window = FreezeWindow.objects.create(
        environment=env, starts_at=starts_at, ends_at=ends_at, reason=reason.strip()
    )
    _audit(
        environment=env,
        actor=actor,
        verb="freeze_window.added",
        data={"window": window.pk, "starts_at": starts_at, "ends_at": ends_at, "reason": reason},
        ip=ip,
    )
    return window


@transaction.atomic
def freeze_window_remove(*, window: FreezeWindow, actor: Any, ip: str | None = None) -> None:
    if not isinstance(actor, str) and not policy.can_lock(actor):
        raise Refused("forbidden", "Only admins may change locks and windows.")
    env = (
        Environment.objects.select_for_update().select_related("app").get(pk=window.environment_id)
    )
    data = {
        "window": window.pk,
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "reason": window.reason,
    }
    FreezeWindow.objects.filter(pk=window.pk).delete()
    _audit(environment=env, actor=actor, verb="freeze_window.removed", data=data, ip=ip)


def environment_machines(*, environment: Environment) -> list[Machine]:
    """The Fly machines of the environment's app, as Fly reports them now; none when the app
    does not exist (yet). Raises APIError."""
    with fly_client() as fly:
        try:
            return fly.list_machines(environment.fly_app_name)
        except PermanentAPIError as error:
            if error.status == 404:
                return []
            raise
