"""Taking a deploy's run lease for a message and, for a queued deploy, claiming its
environment in the same transaction: every check that must hold before anything is written to
Fly or GitHub (the approval, the gates, the queue order, a newer release gone live)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from approvals import policy
from approvals.models import Decision
from deployments import semver
from deployments.engine.hooks import Hooks
from deployments.engine.lease import OPEN_STATES, end, note_lost_worker
from deployments.engine.records import audit, log_line
from deployments.models import Deploy, DeployLog, Environment, Release
from deployments.queue_order import queued_before

log = logging.getLogger(__name__)

State = Deploy.State


def acquire(
    *, deploy_id: int, token: str, worker: str, hooks: Hooks
) -> tuple[Deploy, str, str] | None:
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
            note_lost_worker(deploy)
        run = f"run:{worker}:{uuid.uuid4().hex[:8]}"
        deploy.lease_owner = run
        deploy.lease_expires_at = now + timedelta(seconds=settings.DEPLOY_LEASE_SECONDS)
        deploy.save(update_fields=["lease_owner", "lease_expires_at", "attempts"])
        waiting = claim(deploy, worker=worker, hooks=hooks) if deploy.state == State.QUEUED else ""
        if deploy.is_terminal:  # the claim ended it: nothing to run
            return None
    return deploy, run, waiting


def claim(deploy: Deploy, *, worker: str, hooks: Hooks) -> str:
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
        _end_approval_invalid(deploy, problems, hooks)
        return ""
    # A person's rollback passes the gates like any deploy: the lock it implies is applied
    # only as it starts (below), so a lock it finds here is someone else's (an admin's, or an
    # earlier rollback's) and holds it until a person unlocks. Automatic and emergency ones
    # skip every gate.
    gate = hooks.gate_refusal(
        environment=env,
        applied=set(deploy.overrides),
        kind=deploy.kind,
        now=timezone.now(),
        release=deploy.release,
        emergency=deploy.emergency,
    )
    if gate is not None:
        return f"Waiting: {gate.message}"
    blocker = (
        Deploy.objects.filter(environment=env, state=State.QUEUED)
        .exclude(pk=deploy.pk)
        .filter(queued_before(deploy))
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
            log_line(deploy, f"Started on worker {worker}.")
            audit(deploy=deploy, actor="worker", verb="deploy.started")
            if deploy.kind == Deploy.Kind.ROLLBACK:
                hooks.rollback_hold(deploy=deploy)
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
        elif code == "commit_author":
            problems.append(f"{name} wrote a commit of this release and may not approve it")
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


def _end_approval_invalid(deploy: Deploy, problems: list[str], hooks: Hooks) -> None:
    error = "Approval no longer valid: " + "; ".join(problems) + "."
    end(deploy, State.FAILED, error=error)
    log_line(deploy, f"{error} Nothing was changed.", DeployLog.Level.ERROR)
    audit(
        deploy=deploy, actor="worker", verb="deploy.approval_invalid", data={"problems": problems}
    )
    hooks.notify(deploy=deploy, event="deploy.failed")


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
    end(
        deploy,
        State.SUPERSEDED,
        error=f"Superseded{by}: {live.tag} went live after this deploy of {deploy.release.tag} "
        "was requested, so it would be a downgrade. Nothing was changed; request it again (or "
        "roll back) to go back on purpose.",
    )
    log_line(deploy, deploy.error)
    audit(
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
