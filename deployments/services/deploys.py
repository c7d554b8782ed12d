"""Deploy execution: queue, claim, advance, finish, fail, cancel, abort, supersede, reconcile.

Every transition is one call in one transaction that also writes its audit event.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from approvals.audit import record
from deployments.models import Deploy

log = logging.getLogger(__name__)


def _audit(*, deploy: Deploy, actor, verb: str, data: dict | None = None, ip: str | None = None):
    env = deploy.environment
    record(
        actor=actor,
        verb=verb,
        target=deploy,
        app=env.app.name,
        environment=env.name,
        data=data,
        ip=ip,
    )


def deploy_send(*, deploy_id: int, countdown: float | None = None) -> bool:
    """Publish the run message. A broker error is logged, not raised: the reconciler resends."""
    from deployments.tasks.deploys import deploy_run

    try:
        deploy_run.apply_async(args=[deploy_id], countdown=countdown)
    except Exception:  # noqa: BLE001 - any broker failure; the durable row is the source of truth
        log.warning("could not publish deploy_run for deploy %s; reconciler will resend", deploy_id)
        return False
    return True


def deploy_queue(*, deploy: Deploy, actor) -> Deploy:
    """Mark ``deploy`` queued; its run message is sent when the caller's transaction commits."""
    with transaction.atomic():
        locked = Deploy.objects.select_for_update().get(pk=deploy.pk)
        if locked.state not in (Deploy.State.REQUESTED, Deploy.State.AWAITING_APPROVAL):
            raise ValueError(
                f"deploy {locked.pk} is {locked.state}; only a requested or approved deploy "
                "can be queued"
            )
        locked.state = Deploy.State.QUEUED
        locked.queued_at = timezone.now()
        locked.save(update_fields=["state", "queued_at"])
        _audit(deploy=locked, actor=actor, verb="deploy.queued")
        transaction.on_commit(lambda: deploy_send(deploy_id=locked.pk))
    deploy.state, deploy.queued_at = locked.state, locked.queued_at
    return locked
