"""Deploy execution: queue, claim, run steps, finish, fail, roll back, cancel, abort, supersede,
reconcile.

The database is the source of truth. A Deploy row carries a lease in ``lease_owner``:

* ``next:<token>`` — a run message carrying ``token`` is on its way (due before
  ``lease_expires_at``); messages with any other token are stale and dropped.
* ``run:<worker>:<id>`` — a worker is executing a step until ``lease_expires_at``; every write
  it makes is fenced on still holding this value: its database writes in their transaction,
  and each Fly or GitHub write (and each retry of a call) by a check that also renews the
  lease just before it. A run that finds another worker holding the lease stops quietly.

Workers never sleep waiting for Fly: a step that must wait hands the lease back as a fresh
``next:`` token and the task re-sends itself with a countdown. The reconciler re-sends deploys
whose lease expired (lost message, dead worker) and counts the lost workers in ``attempts``.
Every transition is one transaction that also writes its audit event.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals import policy
from approvals.audit import record
from approvals.models import AuditEvent, Decision
from deployments import rollout, semver, task_names
from deployments.engine import desired
from deployments.models import Deploy, DeployLog, DeployStep, Environment, Preview, Release
from deployments.services.environments import environment_lock
from deployments.services.gates import deploy_gate_refusal, rollback_hold
from deployments.services.notifications import notification_send
from deployments.services.plans import deploy_plan_create
from deployments.services.releases import release_mark_bad
from hotdash import queue
from hotdash.errors import Refused
from hotdash.integrations import (
    APIError,
    FlyClient,
    GitHubClient,
    PermanentAPIError,
    RetryableAPIError,
)
from hotdash.integrations.fly import Machine
from hotdash.integrations.http import (
    FLY,
    GITHUB,
    ApiClient,
    Provider,
    build_client,
    transport_override,
)

log = logging.getLogger(__name__)

State = Deploy.State
StepState = DeployStep.State
ROLLBACK_KINDS = (Deploy.Kind.DEPLOY, Deploy.Kind.ROLLBACK)
# Kinds that go ahead of other queued deploys, in this order; then every other kind, FIFO.
QUEUE_ORDER = (Deploy.Kind.AUTO_ROLLBACK, Deploy.Kind.ROLLBACK)
OPEN_STATES = (State.QUEUED, State.RUNNING, State.VERIFYING)
GONE = ("destroying", "destroyed")  # Fly machine states that will never take an update


@dataclass(frozen=True)
class Next:
    """Send ``deploy_run(deploy_id, token)`` again after ``countdown`` seconds."""

    deploy_id: int
    token: str
    countdown: float


def _audit(*, deploy: Deploy, actor: Any, verb: str, data: dict | None = None, ip=None) -> None:
    env = deploy.environment
    record(
        actor=actor,
        verb=verb,
        target=deploy,
        scope=env,
        data=data,
        ip=ip,
    )


def _log(deploy: Deploy, message: str, level: str = DeployLog.Level.INFO) -> None:
    DeployLog.objects.create(deploy=deploy, level=level, message=message)


def _next_token(deploy: Deploy, *, due_in: float, now: datetime) -> str:
    token = uuid.uuid4().hex
    deploy.lease_owner = f"next:{token}"
    deploy.lease_expires_at = now + timedelta(seconds=due_in + settings.DEPLOY_LEASE_SECONDS)
    return token


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
        token = _next_token(locked, due_in=settings.DEPLOY_DISPATCH_GRACE_SECONDS, now=now)
        locked.save(update_fields=["state", "queued_at", "lease_owner", "lease_expires_at"])
        _audit(deploy=locked, actor=actor, verb="deploy.queued")
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
        _end(locked, State.CANCELLED, error=f"Cancelled: {reason}")
        _log(locked, f"Cancelled by {_name(actor)}: {reason}")
        _audit(
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
            _log(locked, f"Abort requested by {_name(actor)}: {reason}", DeployLog.Level.WARNING)
            _audit(
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
            _log(locked, f"Superseded by deploy #{new.pk}; stopping after the current batch.")
            _audit(
                deploy=locked, actor=actor, verb="deploy.supersede_requested", data={"by": new.pk}
            )
        else:
            previous = locked.state
            _end(locked, State.SUPERSEDED, error=f"Superseded by deploy #{new.pk}.")
            _log(locked, f"Superseded by deploy #{new.pk}.")
            _audit(
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
                _note_lost_worker(deploy)
            token = _next_token(deploy, due_in=0, now=now)
            deploy.save(update_fields=["lease_owner", "lease_expires_at", "attempts"])
            transaction.on_commit(lambda d=deploy.pk, t=token: deploy_send(deploy_id=d, token=t))
            if not lost:
                _audit(deploy=deploy, actor="system", verb="deploy.resent")
        sent.append(deploy_id)
    return sent


def _note_lost_worker(deploy: Deploy) -> None:
    worker = deploy.lease_owner.split(":")[1] if ":" in deploy.lease_owner else "?"
    deploy.attempts += 1
    _log(
        deploy,
        f"Worker {worker} stopped answering mid-step; resuming (attempt {deploy.attempts}).",
        DeployLog.Level.WARNING,
    )
    _audit(
        deploy=deploy,
        actor="system",
        verb="deploy.resumed",
        data={"lost_worker": worker, "attempts": deploy.attempts},
    )


# --- helpers shared by the transitions -------------------------------------------------------


def _name(actor: Any) -> str:
    return actor if isinstance(actor, str) else actor.get_username()


def _end(deploy: Deploy, state: str, *, error: str = "") -> None:
    """Move ``deploy`` (locked) to a terminal state; unstarted steps are skipped."""
    deploy.state = state
    deploy.finished_at = timezone.now()
    deploy.lease_owner = ""
    deploy.lease_expires_at = None
    if error:
        deploy.error = error
    deploy.save(
        update_fields=[
            "state",
            "finished_at",
            "lease_owner",
            "lease_expires_at",
            "error",
            "superseded_by",
            "health_verified",
            "health_summary",
        ]
    )
    deploy.steps.filter(state=StepState.PENDING).update(state=StepState.SKIPPED)
    if deploy.kind == Deploy.Kind.PREVIEW:
        preview = Preview.objects.filter(environment_id=deploy.environment_id).first()
        if preview is not None:
            # Tell the preview its deploy ended, so it need not wait for the 30 s beat
            # refresh (which still covers a lost message).
            transaction.on_commit(lambda: queue.send(task_names.PREVIEW_REFRESH, preview.pk))


# --- the worker side -------------------------------------------------------------------------


class Fenced(Exception):  # noqa: N818 - a control-flow signal
    """This worker no longer holds the deploy's lease: stop without writing anything."""


class Wait(Exception):  # noqa: N818 - a control-flow signal
    """The current step must wait ``seconds`` before running again."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class StepFailed(Exception):  # noqa: N818 - a control-flow signal
    """The deploy fails; ``rollback`` says whether changed machines go back."""

    def __init__(
        self,
        message: str,
        *,
        rollback: bool = True,
        health: bool = False,
        verb: str = "deploy.failed",
    ) -> None:
        self.message = message
        self.rollback = rollback
        self.health = health
        self.verb = verb
        super().__init__(message)


class _Fence:
    """A run's hold on its deploy's lease, checked (and renewed) before every Fly or GitHub
    write: a worker that stalled (a long retry, a frozen process) past its lease may find
    another worker carrying on, and must then write nothing."""

    def __init__(self, *, deploy_id: int, run: str) -> None:
        self.deploy_id = deploy_id
        self.run = run

    def check(self) -> None:
        """Renew the lease if this run still holds it (one UPDATE), else raise Fenced."""
        renewed = Deploy.objects.filter(pk=self.deploy_id, lease_owner=self.run).update(
            lease_expires_at=timezone.now() + timedelta(seconds=settings.DEPLOY_LEASE_SECONDS)
        )
        if not renewed:
            raise Fenced

    def guard(self, api: ApiClient) -> ApiClient:
        """``api`` (sharing its connections) that checks the fence after each wait in its retry
        loop, before sending again: one call can wait there longer than the lease lasts."""
        guarded = copy.copy(api)

        def sleep(seconds: float) -> None:
            api.sleep(seconds)
            self.check()

        guarded.sleep = sleep
        return guarded


@dataclass
class _Progress:
    """What one committed unit of worker progress writes."""

    deploy_fields: dict[str, Any] = field(default_factory=dict)
    step: DeployStep | None = None
    step_fields: dict[str, Any] = field(default_factory=dict)
    logs: list[tuple[str, str]] = field(default_factory=list)
    audits: list[tuple[str, dict]] = field(default_factory=list)


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
    fly_api = _api(FLY, base_url=settings.FLY_API_URL, token=settings.FLY_API_TOKEN)
    machines = _read_machines_kept(FlyClient(fly_api), fly_app) if fly_app else None
    acquired = _acquire(deploy_id=deploy_id, token=token, worker=worker)
    if acquired is None:
        return None
    deploy, run, waiting = acquired
    if waiting or deploy.environment.fly_app_name != fly_app:
        machines = None
    fence = _Fence(deploy_id=deploy.pk, run=run)
    github = GitHubClient(
        fence.guard(_api(GITHUB, base_url=settings.GITHUB_API_URL, token=settings.GITHUB_TOKEN)),
        deploy.environment.app.github_owner,
        deploy.environment.app.github_repo,
    )
    runner = _Runner(deploy, fence, FlyClient(fence.guard(fly_api)), github, machines=machines)
    return runner.drive(waiting=waiting)


MachinesRead = dict[str, Machine] | APIError


def _read_machines(fly: FlyClient, app: str) -> dict[str, Machine]:
    """The Fly app's machines that can still take an update, by id; none if the app is gone
    (the plan's first batch creates it)."""
    try:
        return {m.id: m for m in fly.list_machines(app) if m.state not in GONE}
    except PermanentAPIError as error:
        if error.status != 404:
            raise
        return {}


def _read_machines_kept(fly: FlyClient, app: str) -> MachinesRead:
    try:
        return _read_machines(fly, app)
    except APIError as error:
        return error


def _acquire(*, deploy_id: int, token: str, worker: str) -> tuple[Deploy, str, str] | None:
    """Take the run lease for this message and, for a queued deploy, claim its environment in
    the same transaction. Returns (deploy, run lease, why it still waits — empty unless it
    stayed queued), or None when the message must be dropped."""
    with transaction.atomic():
        deploy = (
            Deploy.objects.select_for_update(of=("self",))
            .select_related("environment__app", "release", "build")
            .filter(pk=deploy_id)
            .first()
        )
        if deploy is None or deploy.state not in OPEN_STATES:
            return None
        now = timezone.now()
        live = deploy.lease_expires_at is not None and deploy.lease_expires_at > now
        if live and deploy.lease_owner != f"next:{token}":
            log.info("deploy %s: dropping a stale or duplicate message", deploy_id)
            return None
        if not live and deploy.lease_owner.startswith("run:"):
            _note_lost_worker(deploy)
        run = f"run:{worker}:{uuid.uuid4().hex[:8]}"
        deploy.lease_owner = run
        deploy.lease_expires_at = now + timedelta(seconds=settings.DEPLOY_LEASE_SECONDS)
        deploy.save(update_fields=["lease_owner", "lease_expires_at", "attempts"])
        waiting = _claim(deploy, worker=worker) if deploy.state == State.QUEUED else ""
        if deploy.is_terminal:  # the claim ended it: nothing to run
            return None
    return deploy, run, waiting


def _claim(deploy: Deploy, *, worker: str) -> str:
    """queued → running (inside the lease's transaction, holding the environment's row) when
    it is this deploy's turn — automatic rollbacks first, then a person's rollbacks, then
    FIFO — the one-active-deploy index agrees, and the environment's lock and freeze windows
    (checked again at each poll: they may have begun since the request) let it through. A
    person's rollback marks the release it rolls away from bad and locks the environment in
    the same transaction as it starts. Returns why it waits instead, or "" once running. A
    deploy whose approval or release no longer holds ends failed, and one that would undo a
    newer release that went live since it was requested ends superseded: both before
    anything is written to Fly or GitHub."""
    env = (
        Environment.objects.select_for_update(of=("self",))
        .select_related("app", "current_release")
        .get(pk=deploy.environment_id)
    )
    deploy.environment = env
    problems = _approval_problems(deploy)
    if problems:
        _end_approval_invalid(deploy, problems)
        return ""
    # A person's rollback passes the gates like any deploy: the lock it implies is applied
    # only as it starts (below), so a lock it finds here is someone else's (an admin's, or an
    # earlier rollback's) and holds it until a person unlocks. Automatic ones skip every gate.
    gate = deploy_gate_refusal(
        environment=env, applied=set(deploy.overrides), kind=deploy.kind, now=timezone.now()
    )
    if gate is not None:
        return f"Waiting: {gate.message}"
    blocker = (
        Deploy.objects.filter(environment=env, state=State.QUEUED)
        .exclude(pk=deploy.pk)
        .filter(_queued_before(deploy))
        .order_by("queued_at", "id")
        .values_list("pk", flat=True)
        .first()
    )
    if blocker is None:
        live = _outdated_by(deploy)
        if live is not None:
            _end_outdated(deploy, live)
            return ""
        now = timezone.now()
        try:
            with transaction.atomic():  # a savepoint: the index may refuse
                Deploy.objects.filter(pk=deploy.pk).update(
                    state=State.RUNNING, started_at=now, attempts=F("attempts") + 1
                )
        except IntegrityError:
            active = Deploy.objects.filter(environment=env, state__in=Deploy.ACTIVE_STATES)
            blocker = active.values_list("pk", flat=True).first()
        else:
            deploy.state, deploy.started_at = State.RUNNING, now
            deploy.attempts += 1
            _log(deploy, f"Started on worker {worker}.")
            _audit(deploy=deploy, actor="worker", verb="deploy.started")
            if deploy.kind == Deploy.Kind.ROLLBACK:
                rollback_hold(deploy=deploy)
            return ""
    if blocker is None:
        return f"Waiting: environment {env.name} is busy."
    return f"Waiting: environment {env.name} is busy with deploy #{blocker}."


def _approval_problems(deploy: Deploy) -> list[str]:
    """Why what was approved no longer holds at the claim: an approving decision's user
    is no longer active or an approver, or is the requester (self-approval now off); the
    release (the target, for a rollback) is no longer deployable. Automatic rollbacks need
    no approval. The bits themselves (digest, checksum) are checked by the artifact step."""
    if deploy.kind == Deploy.Kind.AUTO_ROLLBACK:
        return []
    problems = []
    approving = (
        Decision.objects.filter(request__deploy=deploy, verdict=Decision.Verdict.APPROVE)
        .select_related("request", "user")
        .order_by("created_at", "id")
    )
    for decision in approving:
        user, request = decision.user, decision.request
        request.deploy = deploy
        code, _ = policy.approval_refusal(user=user, request=request, decided_user_ids=set())
        name = user.get_username()
        if code == "self_approval":
            problems.append(f"{name} requested this deploy and may not approve it")
        elif code and not user.is_active:
            problems.append(f"{name} is no longer active")
        elif code:
            problems.append(f"{name} is no longer an approver")
    release = deploy.release
    if release is not None:
        if release.deleted_on_github_at is not None:
            problems.append(f"{release.tag} was deleted on GitHub")
        if release.is_bad:
            why = release.bad_reason or "no reason given"
            problems.append(f"{release.tag} is marked bad: {why}")
        if release.validation != release.Validation.VALID:
            problems.append(
                f"{release.tag} is no longer a valid release ({release.get_validation_display()})"
            )
    return problems


def _end_approval_invalid(deploy: Deploy, problems: list[str]) -> None:
    error = "Approval no longer valid: " + "; ".join(problems) + "."
    _end(deploy, State.FAILED, error=error)
    _log(deploy, f"{error} Nothing was changed.", DeployLog.Level.ERROR)
    _audit(
        deploy=deploy, actor="worker", verb="deploy.approval_invalid", data={"problems": problems}
    )
    notification_send(deploy=deploy, event="deploy.failed")


def _outdated_by(deploy: Deploy) -> Release | None:
    """The live release, when it has higher precedence than ``deploy``'s (a plain deploy)
    and went live after ``deploy`` was requested: running it now would silently undo that
    newer deploy. A downgrade asked for while the newer release was already live is a
    deliberate request (deploy_request allows it) and goes ahead; rollbacks always do."""
    release, live = deploy.release, deploy.environment.current_release
    if (
        deploy.kind != Deploy.Kind.DEPLOY
        or release is None
        or live is None
        or live.pk == deploy.previous_release_id
    ):
        return None
    try:
        older = semver.parse(release.version).precedence_key() < (
            semver.parse(live.version).precedence_key()
        )
    except semver.InvalidVersion:
        return None
    return live if older else None


def _end_outdated(deploy: Deploy, live: Release) -> None:
    newer = (
        deploy.environment.deploys.filter(state=State.SUCCEEDED, release=live)
        .order_by("-finished_at")
        .first()
    )
    by = f" by deploy #{newer.pk}" if newer else ""
    deploy.superseded_by = newer
    _end(
        deploy,
        State.SUPERSEDED,
        error=f"Superseded{by}: {live.tag} went live after this deploy of {deploy.release.tag} "
        "was requested, so it would be a downgrade. Nothing was changed; request it again (or "
        "roll back) to go back on purpose.",
    )
    _log(deploy, deploy.error)
    _audit(
        deploy=deploy,
        actor="worker",
        verb="deploy.superseded",
        data={
            "by": newer.pk if newer else None,
            "from": State.QUEUED,
            "live": live.tag,
            "release": deploy.release.tag,
        },
    )


# --- API clients, shared by the run messages of a worker process -----------------------------

_clients: dict[str, tuple[tuple[Any, ...], ApiClient]] = {}
_clients_lock = threading.Lock()


def _api(provider: Provider, *, base_url: str, token: str) -> ApiClient:
    """This process's client for ``provider``. Building one costs tens of milliseconds (httpx
    makes an SSL context per client), so every run message reuses it. Another URL, token or
    test transport (use_transport), or a forked child, gets a freshly built one."""
    pid, override = os.getpid(), transport_override()
    with _clients_lock:
        cached = _clients.get(provider.name)
        if cached is not None:
            (cached_pid, cached_url, cached_token, cached_override), client = cached
            if (cached_pid, cached_url, cached_token) == (pid, base_url, token) and (
                cached_override is override
            ):
                return client
            if cached_pid == pid:  # a forked child must not close its parent's connections
                client.close()
        client = build_client(provider, base_url=base_url, token=token)
        _clients[provider.name] = ((pid, base_url, token, override), client)
        return client


def deploy_clients_close() -> None:
    """Close this process's shared API clients (on worker shutdown)."""
    with _clients_lock:
        for (pid, *_), client in _clients.values():
            if pid == os.getpid():
                client.close()
        _clients.clear()


class _Runner:
    def __init__(
        self,
        deploy: Deploy,
        fence: _Fence,
        fly: FlyClient,
        github: GitHubClient,
        *,
        machines: MachinesRead | None = None,
    ) -> None:
        self.deploy = deploy
        self.fence = fence
        self.run = fence.run
        self.fly = fly
        self.github = github
        self.machines = machines  # read before the claim, for the artifact step
        self.env: Environment = deploy.environment
        self.step: DeployStep | None = None  # the step being run, for fail()

    # --- committing progress, fenced on the lease ----------------------------------------

    def commit(self, progress: _Progress) -> None:
        with transaction.atomic():
            locked = Deploy.objects.select_for_update().get(pk=self.deploy.pk)
            if locked.lease_owner != self.run:
                raise Fenced
            now = timezone.now()
            fields = {
                **progress.deploy_fields,
                "lease_expires_at": now + timedelta(seconds=settings.DEPLOY_LEASE_SECONDS),
            }
            Deploy.objects.filter(pk=locked.pk).update(**fields)
            for name, value in fields.items():
                setattr(self.deploy, name, value)
            if progress.step is not None and progress.step_fields:
                for name, value in progress.step_fields.items():
                    setattr(progress.step, name, value)
                progress.step.save(update_fields=list(progress.step_fields))
            for level, message in progress.logs:
                _log(self.deploy, message, level)
            for verb, data in progress.audits:
                _audit(deploy=self.deploy, actor="worker", verb=verb, data=data)

    def yield_for(self, seconds: float) -> Next:
        with transaction.atomic():
            locked = Deploy.objects.select_for_update().get(pk=self.deploy.pk)
            if locked.lease_owner != self.run:
                raise Fenced
            token = _next_token(locked, due_in=seconds, now=timezone.now())
            locked.save(update_fields=["lease_owner", "lease_expires_at"])
        return Next(deploy_id=self.deploy.pk, token=token, countdown=seconds)

    # --- the loop ------------------------------------------------------------------------

    def drive(self, *, waiting: str = "") -> Next | None:
        """Run until a step waits or the deploy ends; a lost lease (Fenced, wherever it is
        raised, also while handling another outcome) ends this run quietly."""
        try:
            return self.advance(waiting)
        except Fenced:
            log.info("deploy %s: lease lost; another worker carries on", self.deploy.pk)
            return None

    def advance(self, waiting: str) -> Next | None:
        try:
            if self.deploy.attempts > settings.DEPLOY_MAX_ATTEMPTS:
                raise StepFailed(
                    f"Gave up after {self.deploy.attempts - 1} attempts (worker lost or "
                    f"upstream errors; limit DEPLOY_MAX_ATTEMPTS={settings.DEPLOY_MAX_ATTEMPTS})."
                )
            if self.deploy.state == State.QUEUED:
                self.note_once(waiting)
                raise Wait(settings.DEPLOY_QUEUE_POLL_SECONDS)
            while True:
                step = self.deploy.steps.exclude(
                    state__in=(StepState.DONE, StepState.SKIPPED)
                ).first()
                if step is None:
                    self.succeed()
                    return None
                self.check_stop(step)
                if self.deploy.is_terminal:
                    return None
                self.step = step
                getattr(self, f"step_{step.kind}")(step)
        except Wait as wait:
            return self.yield_for(wait.seconds)
        except RetryableAPIError as error:
            return self.retry_later(error)
        except PermanentAPIError as error:
            self.fail(self.permanent_failure(error))
            return None
        except StepFailed as failure:
            self.fail(failure)
            return None

    def permanent_failure(self, error: PermanentAPIError) -> StepFailed:
        """A 404 after an abort means whoever aborted also deleted the Fly app (a closed PR's
        preview): the deploy ends aborted with nothing left to roll back, not as a failure."""
        aborted = Deploy.objects.filter(pk=self.deploy.pk, abort_requested_at__isnull=False)
        if error.status == 404 and aborted.exists():
            return StepFailed(
                f"Aborted on request; the Fly app or machine is already gone ({error}).",
                rollback=False,
                verb="deploy.aborted",
            )
        return StepFailed(f"{error}")

    def retry_later(self, error: RetryableAPIError) -> Next | None:
        attempts = self.deploy.attempts + 1
        if attempts > settings.DEPLOY_MAX_ATTEMPTS:
            self.fail(StepFailed(f"Gave up after {attempts - 1} attempts: {error}"))
            return None
        delay = rollout.retry_delay(attempts, retry_after=error.retry_after)
        self.commit(
            _Progress(
                deploy_fields={"attempts": attempts},
                logs=[(DeployLog.Level.WARNING, f"{error}; retrying in {delay:.0f} s.")],
            )
        )
        return self.yield_for(delay)

    def note_once(self, message: str) -> None:
        """Log a waiting reason once, not at every poll."""
        last = self.deploy.logs.order_by("-id").values_list("message", flat=True).first()
        if last != message:
            self.commit(_Progress(logs=[(DeployLog.Level.INFO, message)]))

    # --- stopping at a batch boundary ----------------------------------------------------

    def check_stop(self, step: DeployStep) -> None:
        fresh = Deploy.objects.values("abort_requested_at", "superseded_by").get(pk=self.deploy.pk)
        between_batches = step.state == StepState.PENDING or step.kind == DeployStep.Kind.VERIFY
        if not between_batches:
            return
        if fresh["abort_requested_at"]:
            raise StepFailed(
                "Aborted on request: stopped after the current batch.", verb="deploy.aborted"
            )
        if fresh["superseded_by"] and step.kind in (
            DeployStep.Kind.UPDATE_BATCH,
            DeployStep.Kind.VERIFY,
        ):
            self.end_superseded(fresh["superseded_by"])

    def end_superseded(self, by: int) -> None:
        self.report_github("inactive", f"Superseded by deploy #{by}")
        with transaction.atomic():
            locked = Deploy.objects.select_for_update().get(pk=self.deploy.pk)
            if locked.lease_owner != self.run:
                raise Fenced
            _end(locked, State.SUPERSEDED, error=f"Superseded by deploy #{by}.")
            _log(locked, f"Stopped after the current batch: superseded by deploy #{by}.")
            _audit(deploy=locked, actor="worker", verb="deploy.superseded", data={"by": by})
        self.deploy = locked

    # --- steps ---------------------------------------------------------------------------

    def start_step(self, step: DeployStep, message: str) -> None:
        if step.state == StepState.PENDING:
            self.commit(
                _Progress(
                    step=step,
                    step_fields={"state": StepState.RUNNING, "started_at": timezone.now()},
                    logs=[(DeployLog.Level.INFO, message)],
                )
            )

    def finish_step(self, step: DeployStep, detail: str) -> None:
        now = timezone.now()
        self.commit(
            _Progress(
                step=step,
                step_fields={
                    "state": StepState.DONE,
                    "started_at": step.started_at or now,
                    "finished_at": now,
                    "detail": detail,
                    "data": step.data,
                },
                logs=[(DeployLog.Level.INFO, detail)],
            )
        )

    def step_verify_artifact(self, step: DeployStep) -> None:
        """Re-check that the bits are the ones approved, then check the plan against the
        environment's machines in Fly (read just before the claim, else now) before anything
        changes."""
        problems = self.artifact_problems()
        if problems:
            raise StepFailed(
                "Artifact verification failed: " + "; ".join(problems) + ". Nothing was changed.",
                rollback=False,
            )
        app = self.env.fly_app_name
        machines, self.machines = self.machines, None  # a pre-claim read serves once
        if machines is None:
            machines = _read_machines(self.fly, app)
        elif isinstance(machines, APIError):
            raise machines
        planned = [
            machine_id
            for data in self.deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).values_list(
                "data", flat=True
            )
            if "create" not in data
            for machine_id in data.get("machines", [])
        ]
        gone = [machine_id for machine_id in planned if machine_id not in machines]
        if gone:
            raise StepFailed(
                f"Machine(s) {', '.join(gone)} of the plan no longer exist in Fly app {app}. "
                "Nothing was changed; request the deploy again to plan over the current machines.",
                rollback=False,
            )
        image = self.deploy.image_ref
        current = sum(1 for m in planned if machines[m].config.get("image") == image)
        self.finish_step(
            step,
            f"Artifact verified: {image} @ {self.deploy.image_digest or '(no digest)'}. "
            f"Fly app {app}: {len(machines)} machine(s), {len(planned)} to update, "
            f"{current} already on this image.",
        )

    def artifact_problems(self) -> list[str]:
        deploy = self.deploy
        problems = []
        if not deploy.image_ref:
            problems.append("no image reference was approved")
        source = deploy.release or deploy.build
        if source is not None:
            if source.image_digest != deploy.image_digest:
                problems.append(
                    f"image digest is now {source.image_digest or 'empty'}, "
                    f"approved {deploy.image_digest or 'empty'}"
                )
            if source.image_ref != deploy.image_ref:
                problems.append(f"image is now {source.image_ref}, approved {deploy.image_ref}")
        if deploy.release is not None and deploy.release.artifact_sha256 != (
            deploy.artifact_sha256
        ):
            problems.append(
                f"artifact SHA-256 is now {deploy.release.artifact_sha256 or 'empty'}, "
                f"approved {deploy.artifact_sha256 or 'empty'}"
            )
        return problems

    def step_github_deployment(self, step: DeployStep) -> None:
        deploy = self.deploy
        ref = step.data.get("ref") or deploy.commit_sha or (deploy.release and deploy.release.tag)
        if not ref:
            self.commit(
                _Progress(
                    step=step,
                    step_fields={"state": StepState.SKIPPED, "detail": "No commit to report."},
                )
            )
            return
        self.start_step(step, "Creating the GitHub deployment.")
        if deploy.github_deployment_id is None:
            key = str(deploy.pk)
            created = self.github.find_deployment(ref=ref, environment=self.env.name, key=key)
            if created is None:
                self.fence.check()
                created = self.github.create_deployment(
                    ref=ref,
                    environment=self.env.name,
                    key=key,
                    description=f"HotDash deploy #{deploy.pk}: {deploy.image_ref}",
                    required_contexts=[],
                    transient=self.env.kind == Environment.Kind.PREVIEW,
                    production=self.env.kind == Environment.Kind.PRODUCTION,
                )
            self.commit(
                _Progress(
                    deploy_fields={"github_deployment_id": created.id},
                    audits=[("deploy.github_deployment_created", {"id": created.id, "ref": ref})],
                )
            )
        self.fence.check()
        self.github.create_deployment_status(
            deploy.github_deployment_id,
            "in_progress",
            description=f"Rolling out {deploy.image_ref}",
        )
        self.finish_step(
            step,
            f"GitHub deployment {deploy.github_deployment_id} created for {ref}, set in_progress.",
        )

    def machine_metadata(self) -> dict[str, str]:
        return {
            "hotdash_environment": str(self.env.pk),
            "hotdash_deploy": str(self.deploy.pk),
        }

    @property
    def declared(self) -> desired.DeclaredMachineConfig:
        return desired.declared_config(self.env)

    def step_update_batch(self, step: DeployStep) -> None:
        data = step.data
        data.setdefault("updated", [])
        if "updated_at" not in data:
            self.start_step(step, f"{step.title}.")
            if "create" in data:
                self.create_machines(step)
            else:
                self.update_machines(step)
            data["updated_at"] = timezone.now().isoformat()
            self.commit(_Progress(step=step, step_fields={"data": data}))
        self.wait_healthy(step, data["updated"], since=parse_datetime(data["updated_at"]))
        self.finish_step(
            step, f"Batch {data.get('batch', '?')}: {', '.join(data['updated'])} healthy."
        )

    def update_machines(self, step: DeployStep) -> None:
        """Put each machine of the batch on the deploy's image (a reconcile keeps each one's
        own) with the declared config; one that already matches both is left alone."""
        app = self.env.fly_app_name
        reconcile = self.deploy.kind == Deploy.Kind.RECONCILE
        for machine_id in step.data.get("machines", []):
            if machine_id in step.data["updated"]:
                continue
            self.fence.check()
            try:
                lease = self.fly.acquire_lease(
                    app,
                    machine_id,
                    ttl=settings.DEPLOY_FLY_LEASE_SECONDS,
                    description=f"hotdash deploy {self.deploy.pk}",
                )
            except PermanentAPIError as error:
                if error.status != 409:
                    raise
                self.wait_for_lease(step, machine_id)
            step.data.pop("lease_wait", None)
            try:
                machine = self.fly.get_machine(app, machine_id)
                image = machine.config.get("image", "") if reconcile else self.deploy.image_ref
                drift = desired.differences(self.declared, machine.config)
                changed = machine.config.get("image") != image or bool(drift)
                if changed:
                    config = desired.machine_config(
                        self.declared,
                        image=image,
                        existing=machine.config,
                        metadata=self.machine_metadata(),
                    )
                    self.fence.check()
                    self.fly.update_machine(
                        app,
                        machine_id,
                        config,
                        current_version=machine.instance_id,
                        nonce=lease.nonce,
                    )
            finally:
                self.fence.check()
                _release_quietly(self.fly, app, machine_id, lease.nonce)
            step.data["updated"].append(machine_id)
            self.commit(
                _Progress(
                    step=step,
                    step_fields={"data": step.data},
                    logs=[
                        (
                            DeployLog.Level.INFO,
                            f"Machine {machine_id} updated to {image} with the declared config."
                            if changed
                            else f"Machine {machine_id} already runs {image} as declared; "
                            "not updated again.",
                        )
                    ],
                    audits=[
                        (
                            "deploy.machine_updated",
                            {
                                "machine": machine_id,
                                "image": image,
                                "changed": changed,
                                "drift": [d.field for d in drift],
                            },
                        )
                    ],
                )
            )

    def wait_for_lease(self, step: DeployStep, machine_id: str) -> NoReturn:
        """Someone else holds the machine's Fly lease (perhaps a worker that died holding it:
        leases expire). Wait, but at most DEPLOY_FLY_LEASE_WAIT_SECONDS: a holder that keeps
        renewing fails the deploy, naming the holder."""
        limit = settings.DEPLOY_FLY_LEASE_WAIT_SECONDS
        holder = self.fly.get_lease(self.env.fly_app_name, machine_id)
        who = f"{holder.owner} ({holder.description})" if holder else "someone else"
        now = timezone.now()
        waiting = step.data.get("lease_wait") or {}
        if waiting.get("machine") != machine_id:
            waiting = step.data["lease_wait"] = {"machine": machine_id, "since": now.isoformat()}
            self.commit(
                _Progress(
                    step=step,
                    step_fields={"data": step.data},
                    logs=[
                        (
                            DeployLog.Level.WARNING,
                            f"Machine {machine_id} is leased by {who}; waiting at most {limit} s.",
                        )
                    ],
                )
            )
        elapsed = (now - parse_datetime(waiting["since"])).total_seconds()
        if elapsed >= limit:
            raise StepFailed(
                f"Machine {machine_id} has been leased by {who} for more than {limit} s "
                "(DEPLOY_FLY_LEASE_WAIT_SECONDS); gave up. End or wait out that lease, then "
                "deploy again."
            )
        raise Wait(min(settings.DEPLOY_POLL_SECONDS, limit - elapsed))

    def create_machines(self, step: DeployStep) -> None:
        env = self.env
        app = env.fly_app_name
        if self.fly.find_app(app) is None:
            self.fence.check()
            self.fly.create_app(app, env.app.fly_org)
            self.commit(_Progress(audits=[("deploy.fly_app_created", {"app": app})]))
        step.data.setdefault("machines", [])
        existing = {m.name: m for m in self.fly.list_machines(app)}
        for index in range(int(step.data["create"])):
            name = f"{app}-d{self.deploy.pk}-b{step.data.get('batch', 0)}-{index + 1}"
            machine = existing.get(name)
            if machine is None:
                self.fence.check()
                config = desired.machine_config(
                    self.declared, image=self.deploy.image_ref, metadata=self.machine_metadata()
                )
                machine = self.fly.create_machine(app, config, name=name, region=env.region)
            if machine.id in step.data["updated"]:
                continue
            step.data["machines"].append(machine.id)
            step.data["updated"].append(machine.id)
            self.commit(
                _Progress(
                    step=step,
                    step_fields={"data": step.data},
                    logs=[(DeployLog.Level.INFO, f"Machine {machine.id} ({name}) created.")],
                    audits=[
                        (
                            "deploy.machine_created",
                            {"machine": machine.id, "name": name, "image": self.deploy.image_ref},
                        )
                    ],
                )
            )

    def machine_health(self, machine_ids: list[str]) -> tuple[list[str], dict[str, str]]:
        """(healthy ids, {unhealthy id: why}); a machine running another digest fails loudly."""
        healthy: list[str] = []
        problems: dict[str, str] = {}
        for machine_id in machine_ids:
            machine = self.fly.get_machine(self.env.fly_app_name, machine_id)
            digest = machine.image_ref.digest if machine.image_ref else ""
            if (
                machine.state == "started"
                and self.deploy.kind != Deploy.Kind.RECONCILE  # keeps each machine's image
                and self.deploy.image_digest
                and digest
                and (digest != self.deploy.image_digest)
            ):
                raise StepFailed(
                    f"Machine {machine_id} runs image digest {digest}, but "
                    f"{self.deploy.image_digest} was approved."
                )
            if machine.state == "started" and machine.healthy:
                healthy.append(machine_id)
            else:
                problems[machine_id] = _why_unhealthy(machine)
        return healthy, problems

    def wait_healthy(self, step: DeployStep, machine_ids: list[str], *, since: datetime) -> None:
        healthy, problems = self.machine_health(machine_ids)
        if not problems:
            step.data["healthy"] = healthy
            return
        limit = rollout.health_deadline_seconds(
            grace=self.declared.slowest_check_grace,
            timeout=self.declared.slowest_check_timeout,
            attempts=self.env.health_attempts,
        )
        elapsed = (timezone.now() - since).total_seconds()
        if elapsed >= limit:
            raise StepFailed(
                f"Health checks failed after {limit} s: "
                + "; ".join(f"{m}: {why}" for m, why in problems.items()),
                health=True,
            )
        if step.data.get("healthy") != healthy:
            step.data["healthy"] = healthy
            self.commit(_Progress(step=step, step_fields={"data": step.data}))
        raise Wait(min(settings.DEPLOY_POLL_SECONDS, max(0.0, limit - elapsed)))

    def step_verify(self, step: DeployStep) -> None:
        if self.deploy.state != State.VERIFYING:
            self.commit(
                _Progress(
                    deploy_fields={"state": State.VERIFYING},
                    audits=[("deploy.verifying", {})],
                )
            )
        if "since" not in step.data:
            step.data["since"] = timezone.now().isoformat()
            self.commit(
                _Progress(
                    step=step,
                    step_fields={
                        "state": StepState.RUNNING,
                        "started_at": timezone.now(),
                        "data": step.data,
                    },
                    logs=[
                        (
                            DeployLog.Level.INFO,
                            f"Watching health for {self.env.verification_window_seconds} s.",
                        )
                    ],
                )
            )
        machines = self.changed_machines()
        healthy, problems = self.machine_health(machines)
        if problems:
            raise StepFailed(
                "Health checks failed during the verification window: "
                + "; ".join(f"{m}: {why}" for m, why in problems.items()),
                health=True,
            )
        elapsed = (timezone.now() - parse_datetime(step.data["since"])).total_seconds()
        remaining = self.env.verification_window_seconds - elapsed
        if remaining > 0:
            raise Wait(min(settings.DEPLOY_POLL_SECONDS, remaining))
        step.data["healthy"] = healthy
        summary = (
            f"{len(healthy)} machine(s) healthy through the "
            f"{self.env.verification_window_seconds} s verification window."
        )
        self.finish_step(step, summary)

    def step_github_status(self, step: DeployStep) -> None:
        if self.deploy.github_deployment_id is None:
            self.commit(
                _Progress(
                    step=step,
                    step_fields={"state": StepState.SKIPPED, "detail": "No GitHub deployment."},
                )
            )
            return
        self.fence.check()
        self.github.create_deployment_status(
            self.deploy.github_deployment_id,
            "success",
            description=f"Live: {self.deploy.image_ref}",
            environment_url=self.env.url or None,
        )
        self.finish_step(step, "GitHub deployment marked success.")

    def step_rollback_machines(self, step: DeployStep) -> None:
        # Only ever written as a record on a failed deploy; nothing to run.
        self.commit(_Progress(step=step, step_fields={"state": StepState.SKIPPED}))

    def changed_machines(self) -> list[str]:
        machines: list[str] = []
        for data in self.deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).values_list(
            "data", flat=True
        ):
            machines += data.get("updated", [])
        return machines

    def report_github(self, state: str, description: str) -> bool:
        """Best effort: the deploy's outcome is recorded here whether or not GitHub answers.
        True when GitHub recorded the status."""
        if self.deploy.github_deployment_id is None:
            return False
        self.fence.check()  # a run that lost its lease reports nothing
        try:
            self.github.create_deployment_status(
                self.deploy.github_deployment_id, state, description=description
            )
        except APIError as error:
            log.warning(
                "deploy %s: GitHub status %s not recorded: %s", self.deploy.pk, state, error
            )
            return False
        return True

    # --- endings -------------------------------------------------------------------------

    def succeed(self) -> None:
        verify = self.deploy.steps.filter(kind=DeployStep.Kind.VERIFY).first()
        summary = verify.detail if verify else "All machines healthy."
        with transaction.atomic():
            locked = (
                Deploy.objects.select_for_update(of=("self",))
                .select_related("release")
                .get(pk=self.deploy.pk)
            )
            if locked.lease_owner != self.run:
                raise Fenced
            env = Environment.objects.select_for_update().get(pk=self.env.pk)
            if locked.release is not None:
                env.current_release = locked.release
            env.current_image_ref = locked.image_ref
            env.health = Environment.Health.HEALTHY
            env.health_checked_at = timezone.now()
            env.save(
                update_fields=[
                    "current_release",
                    "current_image_ref",
                    "health",
                    "health_checked_at",
                ]
            )
            locked.health_verified = True
            locked.health_summary = summary
            _end(locked, State.SUCCEEDED)
            _log(locked, f"Succeeded: {locked.image_ref} is live on {env}.")
            _audit(
                deploy=locked,
                actor="worker",
                verb="deploy.succeeded",
                data={"image_ref": locked.image_ref, "machines": self.changed_machines()},
            )
            notification_send(deploy=locked, event="deploy.succeeded")
        self.deploy = locked

    def fail(self, failure: StepFailed) -> None:
        deploy = self.deploy
        reported = self.report_github("failure", failure.message[:140])
        changed = self.changed_machines()
        with transaction.atomic():
            locked = Deploy.objects.select_for_update().get(pk=deploy.pk)
            if locked.lease_owner != self.run:
                raise Fenced
            # The step that failed: running, or refused before it recorded its start.
            failed = Q(state=StepState.RUNNING)
            if self.step is not None:
                failed |= Q(pk=self.step.pk, state=StepState.PENDING)
            step = locked.steps.filter(failed).first()
            if step is not None:
                step.state = StepState.FAILED
                step.finished_at = timezone.now()
                step.detail = failure.message
                step.save(update_fields=["state", "finished_at", "detail"])
            if failure.health:
                locked.health_verified = False
                locked.health_summary = failure.message
            _end(locked, State.FAILED, error=failure.message)
            if reported:
                locked.steps.filter(kind=DeployStep.Kind.GITHUB_STATUS).update(
                    state=StepState.DONE,
                    finished_at=timezone.now(),
                    detail=f"GitHub deployment {locked.github_deployment_id} set to failure.",
                )
            _log(locked, failure.message, DeployLog.Level.ERROR)
            _audit(
                deploy=locked,
                actor="worker",
                verb=failure.verb,
                data={"error": failure.message, "changed_machines": changed},
            )
            if changed:
                Environment.objects.filter(pk=self.env.pk).update(
                    health=Environment.Health.FAILING, health_checked_at=timezone.now()
                )
            rollback = None
            if failure.rollback and changed:
                rollback = _start_auto_rollback(failed=locked, machines=changed, failure=failure)
            if changed and rollback is None:
                _log(locked, _no_rollback_reason(locked), DeployLog.Level.ERROR)
            notification_send(deploy=locked, event="deploy.failed")
            if rollback is not None:
                notification_send(deploy=rollback, event="deploy.auto_rolled_back")
        self.deploy = locked


def _no_rollback_reason(deploy: Deploy) -> str:
    if deploy.kind == Deploy.Kind.AUTO_ROLLBACK:
        why = "this was itself an automatic rollback; the environment needs attention."
    elif deploy.kind == Deploy.Kind.PREVIEW:
        why = "previews are not rolled back; the next push deploys again."
    elif deploy.kind == Deploy.Kind.RECONCILE:
        why = "a reconcile keeps every image; the environment needs attention."
    else:
        why = "there is no previous image to return to; the environment needs attention."
    return "Nothing was rolled back automatically: " + why


def _queued_before(deploy: Deploy) -> Q:
    """Deploys queued ahead of ``deploy`` for its environment: automatic rollbacks first (the
    environment is broken), then a person's rollbacks (once one starts, the lock it applies
    holds the others back), then first come, first served."""
    earlier = Q(queued_at__lt=deploy.queued_at) | Q(queued_at=deploy.queued_at, pk__lt=deploy.pk)
    if deploy.kind in QUEUE_ORDER:
        rank = QUEUE_ORDER.index(deploy.kind)
        return Q(kind__in=QUEUE_ORDER[:rank]) | (Q(kind=deploy.kind) & earlier)
    return Q(kind__in=QUEUE_ORDER) | earlier


def _failure_cause(failed: Deploy, failure: StepFailed) -> tuple[str, str]:
    """(cause, what happened) for the log, audit and rollback reason: ``health`` (failed its
    health checks), ``aborted`` (by whom and why) or ``error`` (anything else)."""
    if failure.health:
        return "health", f"failed its health checks: {failure.message}"
    if failure.verb == "deploy.aborted":
        asked = (
            AuditEvent.objects.filter(
                verb="deploy.abort_requested", target_type="deploy", target_id=str(failed.pk)
            )
            .order_by("-id")
            .values_list("actor_name", "data")
            .first()
        )
        who, data = asked or ("someone", {})
        return "aborted", f"was aborted by {who}: {data.get('reason') or 'no reason given'}"
    return "error", f"failed with an error: {failure.message}"


def _start_auto_rollback(
    *, failed: Deploy, machines: list[str], failure: StepFailed
) -> Deploy | None:
    """Create and queue (no approval) the deploy that puts ``machines`` back on the image
    ``failed`` replaced. Runs inside the failing transaction."""
    if failed.kind not in ROLLBACK_KINDS or not failed.previous_image_ref:
        return None
    env = failed.environment
    previous = failed.previous_release
    cause, happened = _failure_cause(failed, failure)
    rollback = Deploy.objects.create(
        environment=env,
        release=previous,
        kind=Deploy.Kind.AUTO_ROLLBACK,
        requested_by_system="system",
        reason=f"Automatic rollback after deploy #{failed.pk} {happened}"[:2000],
        previous_release=failed.release,
        previous_image_ref=failed.image_ref,
        image_ref=failed.previous_image_ref,
        image_digest=previous.image_digest if previous else "",
        artifact_sha256=previous.artifact_sha256 if previous else "",
        commit_sha=previous.commit_sha if previous else "",
        rollback_of=failed,
    )
    target = previous.tag if previous else failed.previous_image_ref
    deploy_plan_create(
        deploy=rollback,
        target_name=target,
        machine_ids=machines,
        verify_data={
            "image_ref": rollback.image_ref,
            "image_digest": rollback.image_digest,
            "artifact_sha256": rollback.artifact_sha256,
        },
        create_missing=False,  # only the machines that changed go back
    )
    position = failed.steps.count() + 1
    DeployStep.objects.create(
        deploy=failed,
        position=position,
        kind=DeployStep.Kind.ROLLBACK_MACHINES,
        title=f"Roll {', '.join(machines)} back to {target}",
        state=StepState.DONE,
        detail=f"Handed to automatic rollback deploy #{rollback.pk}.",
        data={"machines": machines, "rollback_deploy": rollback.pk},
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    _log(
        failed,
        f"Rolling machines {', '.join(machines)} back to {target} (deploy #{rollback.pk}): "
        f"deploy #{failed.pk} {happened}"[:2000],
        DeployLog.Level.WARNING,
    )
    _audit(
        deploy=rollback,
        actor="system",
        verb="deploy.auto_rollback_started",
        data={
            "rollback_of": failed.pk,
            "machines": machines,
            "image_ref": rollback.image_ref,
            "cause": cause,
            "reason": rollback.reason,
        },
    )
    deploy_queue(deploy=rollback, actor="system")
    if cause != "health":
        return rollback
    # A release that failed its health checks stays rolled back, as after a person's rollback:
    # it cannot go out again and the environment takes no new deploys until someone has looked
    # (both cleared with a reason). An abort or an error says nothing against the release.
    if failed.release is not None:
        release_mark_bad(
            release=failed.release,
            actor="system",
            reason=f"Failed its health checks in {env.name} (deploy #{failed.pk}); "
            f"rolled back automatically by deploy #{rollback.pk}.",
        )
    environment_lock(
        environment=env,
        actor="system",
        reason=f"Automatic rollback #{rollback.pk} after deploy #{failed.pk} failed its health "
        "checks. Unlock once the cause is understood.",
    )
    return rollback


def _why_unhealthy(machine: Machine) -> str:
    if machine.state != "started":
        return f"state {machine.state}"
    failing = [f"{c.name} {c.status} ({c.output})" for c in machine.checks if not c.passing]
    return ", ".join(failing) or "no check results yet"


def _release_quietly(fly: FlyClient, app: str, machine_id: str, nonce: str) -> None:
    try:
        fly.release_lease(app, machine_id, nonce)
    except APIError as error:
        # The lease expires on its own; the update itself already succeeded or failed.
        log.warning("could not release the Fly lease on %s: %s", machine_id, error)
