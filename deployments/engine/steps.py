"""One function per step kind (``STEPS``), each called with the run's context and its
``DeployStep``. A step that must wait raises ``Wait``; one that fails raises ``StepFailed``;
each Fly or GitHub write is preceded by a fence check; a resumed step repeats nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from deployments import rollout
from deployments.engine import desired
from deployments.engine.context import (
    Progress,
    RunContext,
    StepFailed,
    Wait,
    read_machines,
)
from deployments.models import Deploy, DeployLog, DeployStep
from hotdash.integrations import APIError, FlyClient, PermanentAPIError
from hotdash.integrations.fly import Machine

log = logging.getLogger(__name__)

State = Deploy.State
StepState = DeployStep.State


def verify_artifact(run: RunContext, step: DeployStep) -> None:
    """Re-check that the bits are the ones approved, then check the plan against the
    environment's machines in Fly (read just before the claim, else now) before anything
    changes."""
    problems = _artifact_problems(run)
    if problems:
        raise StepFailed(
            "Artifact verification failed: " + "; ".join(problems) + ". Nothing was changed.",
            rollback=False,
        )
    app = run.env.fly_app_name
    machines, run.machines = run.machines, None  # a pre-claim read serves once
    if machines is None:
        machines = read_machines(run.fly, app)
    elif isinstance(machines, APIError):
        raise machines
    planned = [
        machine_id
        for data in run.deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).values_list(
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
    image = run.deploy.image_ref
    current = sum(1 for m in planned if machines[m].config.get("image") == image)
    run.finish_step(
        step,
        f"Artifact verified: {image} @ {run.deploy.image_digest or '(no digest)'}. "
        f"Fly app {app}: {len(machines)} machine(s), {len(planned)} to update, "
        f"{current} already on this image.",
    )


def _artifact_problems(run: RunContext) -> list[str]:
    deploy = run.deploy
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
    if deploy.release is not None and deploy.release.artifact_sha256 != (deploy.artifact_sha256):
        problems.append(
            f"artifact SHA-256 is now {deploy.release.artifact_sha256 or 'empty'}, "
            f"approved {deploy.artifact_sha256 or 'empty'}"
        )
    return problems


def github_deployment(run: RunContext, step: DeployStep) -> None:
    """Queue the GitHub deployment and its in_progress status in the outbox (the GitHub
    reports, delivered paced per token off the rollout: services/github_reports.py)."""
    deploy = run.deploy
    ref = step.data.get("ref") or deploy.commit_sha or (deploy.release and deploy.release.tag)
    if not ref:
        run.commit(
            Progress(
                step=step,
                step_fields={"state": StepState.SKIPPED, "detail": "No commit to report."},
            )
        )
        return
    run.fence.check()
    run.hooks.github_report(
        deploy=deploy, state="in_progress", description=f"Rolling out {deploy.image_ref}", ref=ref
    )
    run.finish_step(step, f"GitHub deployment for {ref} queued, to be set in_progress.")


def update_batch(run: RunContext, step: DeployStep) -> None:
    data = step.data
    data.setdefault("updated", [])
    if "updated_at" not in data:
        run.start_step(step, f"{step.title}.")
        if "create" in data:
            _create_machines(run, step)
        else:
            _update_machines(run, step)
        data["updated_at"] = timezone.now().isoformat()
        run.commit(Progress(step=step, step_fields={"data": data}))
    _wait_healthy(run, step, data["updated"], since=parse_datetime(data["updated_at"]))
    run.finish_step(step, f"Batch {data.get('batch', '?')}: {', '.join(data['updated'])} healthy.")


def _update_machines(run: RunContext, step: DeployStep) -> None:
    """Put each machine of the batch on the deploy's image (a reconcile keeps each one's
    own) with the declared config; one that already matches both is left alone."""
    app = run.env.fly_app_name
    reconcile = run.deploy.kind == Deploy.Kind.RECONCILE
    for machine_id in step.data.get("machines", []):
        if machine_id in step.data["updated"]:
            continue
        run.fence.check()
        try:
            lease = run.fly.acquire_lease(
                app,
                machine_id,
                ttl=settings.DEPLOY_FLY_LEASE_SECONDS,
                description=f"hotdash deploy {run.deploy.pk}",
            )
        except PermanentAPIError as error:
            if error.status != 409:
                raise
            _wait_for_lease(run, step, machine_id)
        step.data.pop("lease_wait", None)
        try:
            machine = run.fly.get_machine(app, machine_id)
            image = machine.config.get("image", "") if reconcile else run.deploy.image_ref
            drift = desired.differences(run.declared, machine.config)
            changed = machine.config.get("image") != image or bool(drift)
            if changed:
                config = desired.machine_config(
                    run.declared,
                    image=image,
                    existing=machine.config,
                    metadata=run.machine_metadata(),
                )
                run.fence.check()
                run.fly.update_machine(
                    app,
                    machine_id,
                    config,
                    current_version=machine.instance_id,
                    nonce=lease.nonce,
                )
        finally:
            run.fence.check()
            _release_quietly(run.fly, app, machine_id, lease.nonce)
        step.data["updated"].append(machine_id)
        run.commit(
            Progress(
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


def _wait_for_lease(run: RunContext, step: DeployStep, machine_id: str) -> NoReturn:
    """Someone else holds the machine's Fly lease (perhaps a worker that died holding it:
    leases expire). Wait, but at most DEPLOY_FLY_LEASE_WAIT_SECONDS: a holder that keeps
    renewing fails the deploy, naming the holder."""
    limit = settings.DEPLOY_FLY_LEASE_WAIT_SECONDS
    holder = run.fly.get_lease(run.env.fly_app_name, machine_id)
    who = f"{holder.owner} ({holder.description})" if holder else "someone else"
    now = timezone.now()
    waiting = step.data.get("lease_wait") or {}
    if waiting.get("machine") != machine_id:
        waiting = step.data["lease_wait"] = {"machine": machine_id, "since": now.isoformat()}
        run.commit(
            Progress(
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


def _create_machines(run: RunContext, step: DeployStep) -> None:
    env = run.env
    app = env.fly_app_name
    if run.fly.find_app(app) is None:
        run.fence.check()
        run.fly.create_app(app, env.app.fly_org)
        run.commit(Progress(audits=[("deploy.fly_app_created", {"app": app})]))
    step.data.setdefault("machines", [])
    existing = {m.name: m for m in run.fly.list_machines(app)}
    for index in range(int(step.data["create"])):
        name = f"{app}-d{run.deploy.pk}-b{step.data.get('batch', 0)}-{index + 1}"
        machine = existing.get(name)
        if machine is None:
            run.fence.check()
            config = desired.machine_config(
                run.declared, image=run.deploy.image_ref, metadata=run.machine_metadata()
            )
            machine = run.fly.create_machine(app, config, name=name, region=env.region)
        if machine.id in step.data["updated"]:
            continue
        step.data["machines"].append(machine.id)
        step.data["updated"].append(machine.id)
        run.commit(
            Progress(
                step=step,
                step_fields={"data": step.data},
                logs=[(DeployLog.Level.INFO, f"Machine {machine.id} ({name}) created.")],
                audits=[
                    (
                        "deploy.machine_created",
                        {"machine": machine.id, "name": name, "image": run.deploy.image_ref},
                    )
                ],
            )
        )


@dataclass(frozen=True)
class MachineHealth:
    healthy: list[str]
    problems: dict[str, str]  # unhealthy id: why
    starting: list[str]  # not started yet (their checks cannot pass)


def _machine_health(run: RunContext, machine_ids: list[str]) -> MachineHealth:
    """Which machines are healthy, and why the others are not; a machine running another
    digest fails loudly."""
    healthy: list[str] = []
    problems: dict[str, str] = {}
    starting: list[str] = []
    for machine_id in machine_ids:
        machine = run.fly.get_machine(run.env.fly_app_name, machine_id)
        digest = machine.image_ref.digest if machine.image_ref else ""
        if (
            machine.state == "started"
            and run.deploy.kind != Deploy.Kind.RECONCILE  # keeps each machine's image
            and run.deploy.image_digest
            and digest
            and (digest != run.deploy.image_digest)
        ):
            raise StepFailed(
                f"Machine {machine_id} runs image digest {digest}, but "
                f"{run.deploy.image_digest} was approved."
            )
        if machine.state == "started" and machine.healthy:
            healthy.append(machine_id)
        else:
            problems[machine_id] = _why_unhealthy(machine)
        if machine.state != "started":
            starting.append(machine_id)
    return MachineHealth(healthy=healthy, problems=problems, starting=starting)


def _wait_healthy(
    run: RunContext, step: DeployStep, machine_ids: list[str], *, since: datetime
) -> None:
    health = _machine_health(run, machine_ids)
    healthy, problems = health.healthy, health.problems
    if not problems:
        step.data["healthy"] = healthy
        return
    grace, timeout = run.declared.slowest_check_grace, run.declared.slowest_check_timeout
    limit = rollout.health_deadline_seconds(
        grace=grace, timeout=timeout, attempts=run.env.health_attempts
    )
    if run.deploy.emergency and not health.starting:
        # Once every machine has started (as first seen here), an emergency rollback gives
        # them their grace period and one check, not every attempt.
        if "started_at" not in step.data:
            step.data["started_at"] = timezone.now().isoformat()
            run.commit(Progress(step=step, step_fields={"data": step.data}))
        since = parse_datetime(step.data["started_at"])
        limit = rollout.health_deadline_seconds(grace=grace, timeout=timeout, attempts=1)
    elapsed = (timezone.now() - since).total_seconds()
    if elapsed >= limit:
        raise StepFailed(
            f"Health checks failed after {limit} s: "
            + "; ".join(f"{m}: {why}" for m, why in problems.items()),
            health=True,
        )
    if step.data.get("healthy") != healthy:
        step.data["healthy"] = healthy
        run.commit(Progress(step=step, step_fields={"data": step.data}))
    raise Wait(min(settings.DEPLOY_POLL_SECONDS, max(0.0, limit - elapsed)))


def verify(run: RunContext, step: DeployStep) -> None:
    if run.deploy.state != State.VERIFYING:
        run.commit(
            Progress(
                deploy_fields={"state": State.VERIFYING},
                audits=[("deploy.verifying", {})],
            )
        )
    if "since" not in step.data:
        step.data["since"] = timezone.now().isoformat()
        run.commit(
            Progress(
                step=step,
                step_fields={
                    "state": StepState.RUNNING,
                    "started_at": timezone.now(),
                    "data": step.data,
                },
                logs=[
                    (
                        DeployLog.Level.INFO,
                        f"Watching health for {run.env.verification_window_seconds} s.",
                    )
                ],
            )
        )
    machines = run.changed_machines()
    health = _machine_health(run, machines)
    healthy, problems = health.healthy, health.problems
    if problems:
        raise StepFailed(
            "Health checks failed during the verification window: "
            + "; ".join(f"{m}: {why}" for m, why in problems.items()),
            health=True,
        )
    elapsed = (timezone.now() - parse_datetime(step.data["since"])).total_seconds()
    remaining = run.env.verification_window_seconds - elapsed
    if remaining > 0:
        raise Wait(min(settings.DEPLOY_POLL_SECONDS, remaining))
    step.data["healthy"] = healthy
    summary = (
        f"{len(healthy)} machine(s) healthy through the "
        f"{run.env.verification_window_seconds} s verification window."
    )
    run.finish_step(step, summary)


def github_status(run: RunContext, step: DeployStep) -> None:
    run.fence.check()
    queued = run.hooks.github_report(
        deploy=run.deploy,
        state="success",
        description=f"Live: {run.deploy.image_ref}",
        environment_url=run.env.url,
    )
    if not queued:
        run.commit(
            Progress(
                step=step,
                step_fields={"state": StepState.SKIPPED, "detail": "No GitHub deployment."},
            )
        )
        return
    run.finish_step(step, "GitHub deployment success queued.")


def rollback_machines(run: RunContext, step: DeployStep) -> None:
    # Only ever written as a record on a failed deploy; nothing to run.
    run.commit(Progress(step=step, step_fields={"state": StepState.SKIPPED}))


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


STEPS: dict[str, Callable[[RunContext, DeployStep], None]] = {
    DeployStep.Kind.VERIFY_ARTIFACT: verify_artifact,
    DeployStep.Kind.GITHUB_DEPLOYMENT: github_deployment,
    DeployStep.Kind.UPDATE_BATCH: update_batch,
    DeployStep.Kind.VERIFY: verify,
    DeployStep.Kind.GITHUB_STATUS: github_status,
    DeployStep.Kind.ROLLBACK_MACHINES: rollback_machines,
}
