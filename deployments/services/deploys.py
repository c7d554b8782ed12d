"""Deploy transitions: queue, cancel, abort, supersede, reconcile; and ``deploy_execute``, the
worker's entry into the rollout engine (``deployments.engine``).

The database is the source of truth. A Deploy row carries a run lease in ``lease_owner``
(``deployments.engine.lease``): ``next:<token>`` while a run message is on its way,
``run:<worker>:<id>`` while a worker executes a step, every write it makes fenced on still
holding it. The reconciler re-sends deploys whose lease expired (lost message, dead worker) and
counts the lost workers in ``attempts``. Every transition is one transaction that also writes
its audit event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deployments import task_names
from deployments.engine.claim import acquire
from deployments.engine.clients import api_client
from deployments.engine.context import read_machines_kept
from deployments.engine.hooks import Hooks
from deployments.engine.lease import OPEN_STATES, Fence, Next, end, next_token, note_lost_worker
from deployments.engine.records import audit, log_line
from deployments.engine.runner import Runner
from deployments.models import Deploy, DeployLog
from deployments.services.environments import environment_lock
from deployments.services.gates import deploy_gate_refusal, rollback_hold
from deployments.services.github_reports import github_report_queue
from deployments.services.notifications import notification_send
from deployments.services.plans import deploy_plan_create
from deployments.services.releases import release_mark_bad
from hotdash import queue
from hotdash.errors import Refused
from hotdash.integrations import FlyClient
from hotdash.integrations.http import FLY

State = Deploy.State


def deploy_send(
    *, deploy_id: int, token: str, countdown: float | None = None, fly_app: str = ""
) -> bool:
    """Publish the run message. ``fly_app`` asks the worker to read that Fly app's machines
    before it even loads the deploy (see deploy_execute). A broker error is logged, not
    raised: the reconciler resends."""
    args = [deploy_id, token, fly_app] if fly_app else [deploy_id, token]
    return queue.send(task_names.DEPLOY_RUN, *args, countdown=countdown)


# --- transitions people and other services ask for -------------------------------------------


def deploy_queue(*, deploy: Deploy, actor: Any) -> Deploy:
    """Mark ``deploy`` queued; its run message is sent when the caller's transaction commits."""
    with transaction.atomic():
        locked = (
            Deploy.objects.select_for_update(of=("self",))
            .select_related("environment")
            .get(pk=deploy.pk)
        )
        if locked.state not in (State.REQUESTED, State.AWAITING_APPROVAL):
            raise Refused(
                "not_queueable", f"Deploy #{locked.pk} is {locked.get_state_display().lower()}."
            )
        now = timezone.now()
        locked.state = State.QUEUED
        locked.queued_at = now
        token = next_token(locked, due_in=settings.DEPLOY_DISPATCH_GRACE_SECONDS, now=now)
        locked.save(update_fields=["state", "queued_at", "lease_owner", "lease_expires_at"])
        audit(deploy=locked, actor=actor, verb="deploy.queued")
        busy = (
            Deploy.objects.filter(
                environment_id=locked.environment_id,
                state__in=(*Deploy.ACTIVE_STATES, State.QUEUED),
            )
            .exclude(pk=locked.pk)
            .exists()
        )
        # On an idle environment the worker will claim at once: let it start with the Fly read.
        fly_app = "" if busy else locked.environment.fly_app_name
        transaction.on_commit(
            lambda: deploy_send(deploy_id=locked.pk, token=token, fly_app=fly_app)
        )
    deploy.refresh_from_db()
    return deploy


def deploy_cancel(*, deploy: Deploy, actor: Any, reason: str, ip: str | None = None) -> Deploy:
    """Cancel a deploy that has not started (requested, awaiting approval or queued)."""
    with transaction.atomic():
        locked = Deploy.objects.select_for_update().get(pk=deploy.pk)
        if locked.state not in (State.REQUESTED, State.AWAITING_APPROVAL, State.QUEUED):
            raise Refused(
                "not_cancellable",
                f"Deploy #{locked.pk} is {locked.get_state_display().lower()}; only a deploy "
                "that has not started can be cancelled (abort a running one).",
            )
        previous = locked.state
        end(locked, State.CANCELLED, error=f"Cancelled: {reason}")
        log_line(locked, f"Cancelled by {_name(actor)}: {reason}")
        audit(
            deploy=locked,
            actor=actor,
            verb="deploy.cancelled",
            data={"from": previous, "reason": reason},
            ip=ip,
        )
    deploy.refresh_from_db()
    return deploy


def deploy_abort(*, deploy: Deploy, actor: Any, reason: str, ip: str | None = None) -> Deploy:
    """Ask a running deploy to stop: the worker finishes the current batch, rolls back what
    changed and ends the deploy failed (aborted)."""
    with transaction.atomic():
        locked = Deploy.objects.select_for_update().get(pk=deploy.pk)
        if locked.state not in Deploy.ACTIVE_STATES:
            raise Refused(
                "not_running",
                f"Deploy #{locked.pk} is {locked.get_state_display().lower()}; only a running "
                "deploy can be aborted (cancel one that has not started).",
            )
        if locked.abort_requested_at is None:
            locked.abort_requested_at = timezone.now()
            locked.save(update_fields=["abort_requested_at"])
            log_line(
                locked, f"Abort requested by {_name(actor)}: {reason}", DeployLog.Level.WARNING
            )
            audit(
                deploy=locked, actor=actor, verb="deploy.abort_requested", data={"reason": reason}
            )
    deploy.refresh_from_db()
    return deploy


def deploy_supersede(*, old: Deploy, new: Deploy, actor: Any) -> Deploy:
    """Replace ``old`` by ``new``: at once if it has not started, else after its current batch
    (no rollback: the newer deploy takes over the machines)."""
    with transaction.atomic():
        locked = Deploy.objects.select_for_update().get(pk=old.pk)
        if locked.is_terminal:
            raise Refused("finished", f"Deploy #{locked.pk} already ended ({locked.state}).")
        locked.superseded_by = new
        if locked.state in Deploy.ACTIVE_STATES:
            locked.save(update_fields=["superseded_by"])
            log_line(locked, f"Superseded by deploy #{new.pk}; stopping after the current batch.")
            audit(
                deploy=locked, actor=actor, verb="deploy.supersede_requested", data={"by": new.pk}
            )
        else:
            previous = locked.state
            end(locked, State.SUPERSEDED, error=f"Superseded by deploy #{new.pk}.")
            log_line(locked, f"Superseded by deploy #{new.pk}.")
            audit(
                deploy=locked,
                actor=actor,
                verb="deploy.superseded",
                data={"by": new.pk, "from": previous},
            )
    old.refresh_from_db()
    return old


def deploy_reconcile(*, now: datetime | None = None) -> list[int]:
    """Re-send every open deploy whose lease expired: a lost message (``next:``) or a worker
    that died mid-step (``run:``, counted in ``attempts``). Returns the ids re-sent."""
    now = now or timezone.now()
    expired = Deploy.objects.filter(state__in=OPEN_STATES).filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    )
    sent: list[int] = []
    for deploy_id in expired.order_by("queued_at", "id").values_list("id", flat=True):
        with transaction.atomic():
            deploy = (
                Deploy.objects.select_for_update(skip_locked=True)
                .filter(pk=deploy_id, state__in=OPEN_STATES)
                .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
                .select_related("environment__app")
                .first()
            )
            if deploy is None:
                continue
            lost = deploy.lease_owner.startswith("run:")
            if lost:
                note_lost_worker(deploy)
            token = next_token(deploy, due_in=0, now=now)
            deploy.save(update_fields=["lease_owner", "lease_expires_at", "attempts"])
            transaction.on_commit(lambda d=deploy.pk, t=token: deploy_send(deploy_id=d, token=t))
            if not lost:
                audit(deploy=deploy, actor="system", verb="deploy.resent")
        sent.append(deploy_id)
    return sent


def _name(actor: Any) -> str:
    return actor if isinstance(actor, str) else actor.get_username()


ENGINE_HOOKS = Hooks(
    gate_refusal=deploy_gate_refusal,
    rollback_hold=rollback_hold,
    notify=notification_send,
    plan_create=deploy_plan_create,
    release_mark_bad=release_mark_bad,
    environment_lock=environment_lock,
    queue=deploy_queue,
    github_report=github_report_queue,
)


def deploy_execute(*, deploy_id: int, token: str, worker: str, fly_app: str = "") -> Next | None:
    """Run the deploy's next steps until one must wait (returns when to run again) or the
    deploy ends (None). Safe to call with stale or duplicate messages: they are dropped.

    A message sent as the deploy was queued on an idle environment names its Fly app: the
    machines the artifact step checks the plan against are read first, before the deploy is
    loaded and claimed, so the claim's commit is not followed by a round trip to Fly. It is
    one read: nothing in Fly or GitHub changes before the claim commits, and a message that
    claims nothing (or whose environment moved to another app since) discards it. A failed
    read is kept and raised by the artifact step once claimed, so it is retried or fails the
    deploy like any step's error."""
    fly_api = api_client(FLY, base_url=settings.FLY_API_URL, token=settings.FLY_API_TOKEN)
    machines = read_machines_kept(FlyClient(fly_api), fly_app) if fly_app else None
    acquired = acquire(deploy_id=deploy_id, token=token, worker=worker, hooks=ENGINE_HOOKS)
    if acquired is None:
        return None
    deploy, run, waiting = acquired
    if waiting or deploy.environment.fly_app_name != fly_app:
        machines = None
    fence = Fence(deploy_id=deploy.pk, run=run)
    runner = Runner(
        deploy, fence, FlyClient(fence.guard(fly_api)), hooks=ENGINE_HOOKS, machines=machines
    )
    return runner.drive(waiting=waiting)
