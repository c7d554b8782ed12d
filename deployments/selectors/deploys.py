"""Reads for deploy pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import prefetch_related_objects
from django.utils import timezone

from deployments.models import Deploy, DeployLog, DeployStep
from hotdash.queries import one_or_404


def deploy_get(*, pk: int) -> Deploy:
    """The deploy with what its page and the API show of it.

    The relations often unset are read after the deploy, and only those that are set: joined
    too, the ten tables cost PostgreSQL 3-6 ms of planning, more than the primary-key lookups
    of the few set (and an unset prefetch still costs Django a queryset to build)."""
    deploy = one_or_404(
        Deploy.objects.select_related(
            "environment__app",
            "environment__current_release",
            "release",
            "requested_by",
            "approval_request",
        ),
        pk=pk,
    )
    optional = {
        "environment__locked_by": deploy.environment.locked_by_id,
        "previous_release": deploy.previous_release_id,
        "overridden_by": deploy.overridden_by_id,
        "rehearsal__environment": deploy.rehearsal_id,
    }
    prefetch_related_objects([deploy], *[lookup for lookup, key in optional.items() if key])
    return deploy


@dataclass(frozen=True)
class MachineProgress:
    id: str
    state: str  # pending / updated / healthy, or unchanged when its batch was skipped


@dataclass(frozen=True)
class StepProgress:
    step: DeployStep
    percent: int
    machines: list[MachineProgress]
    state: str  # the step's state, or not_run when its deploy ended before reaching it
    label: str


def deploy_step_progress(*, deploy: Deploy) -> list[StepProgress]:
    """Each plan step with a completion percentage; batches also per machine (updated, then
    healthy), read from the data the worker keeps on the step."""
    progress = []
    for step in deploy.steps.all():
        updated = set(step.data.get("updated", []))
        healthy = set(step.data.get("healthy", []))
        # Only a batch tracks its machines; other steps (e.g. a rollback hand-off) merely
        # name them in their title.
        batch_machines = (
            step.data.get("machines", []) if step.kind == DeployStep.Kind.UPDATE_BATCH else []
        )
        # A pending step of a finished deploy will never run: say so rather than "Pending".
        never_run = deploy.is_terminal and step.state == DeployStep.State.PENDING
        skipped = step.state == DeployStep.State.SKIPPED or never_run
        machines = [
            MachineProgress(
                id=machine_id,
                state="unchanged"
                if skipped
                else "healthy"
                if machine_id in healthy
                else "updated"
                if machine_id in updated
                else "pending",
            )
            for machine_id in batch_machines
        ]
        if step.state == DeployStep.State.DONE:
            percent = 100
        elif skipped:
            percent = 0
        elif machines:
            done = sum({"pending": 0, "updated": 1, "healthy": 2}[m.state] for m in machines)
            percent = round(100 * done / (2 * len(machines)))
        else:
            percent = 50 if step.state == DeployStep.State.RUNNING else 0
        progress.append(
            StepProgress(
                step=step,
                percent=percent,
                machines=machines,
                state="not_run" if never_run else step.state,
                label="Not run" if never_run else step.get_state_display(),
            )
        )
    return progress


def deploy_log_tail(*, deploy: Deploy, lines: int = 50) -> list[DeployLog]:
    return list(reversed(deploy.logs.order_by("-id")[:lines]))


@dataclass(frozen=True)
class RollbackTaken:
    deploy: Deploy
    machines: list[str]


@dataclass(frozen=True)
class DeployOutcome:
    """What failed and what was done about it, for the deploy page."""

    failed_step: DeployStep | None
    rolled_back_by: list[RollbackTaken]
    untouched: list[str]  # machines of batches that never ran: still on the previous version


def deploy_outcome(*, deploy: Deploy, steps: list[StepProgress]) -> DeployOutcome:
    failed_step = next((i.step for i in steps if i.step.state == DeployStep.State.FAILED), None)
    handed = {
        i.step.data.get("rollback_deploy"): i.step.data.get("machines", [])
        for i in steps
        if i.step.kind == DeployStep.Kind.ROLLBACK_MACHINES
    }
    rollbacks = (
        deploy.rollbacks.select_related("release")
        # What the deploy page says of each: not the rest of the wide deploy and release rows.
        .only(
            "kind",
            "state",
            "image_ref",
            "health_summary",
            "created_at",
            "rollback_of",
            "release__tag",
        )
        .order_by("created_at", "id")
    )
    untouched = [
        machine.id
        for i in steps
        if i.step.kind == DeployStep.Kind.UPDATE_BATCH and i.step.state == DeployStep.State.SKIPPED
        for machine in i.machines
    ]
    return DeployOutcome(
        failed_step=failed_step,
        rolled_back_by=[RollbackTaken(deploy=r, machines=handed.get(r.pk, [])) for r in rollbacks],
        untouched=untouched,
    )


def deploy_duration(*, deploy: Deploy) -> str:
    """How long the rollout took (or has taken so far), e.g. "3 min 23 s"."""
    return rollout_duration(started_at=deploy.started_at, finished_at=deploy.finished_at)


def rollout_duration(*, started_at: datetime | None, finished_at: datetime | None) -> str:
    """How long a rollout that started at ``started_at`` took (or has taken so far, while
    ``finished_at`` is None): "" when it never started."""
    if started_at is None:
        return ""
    end = finished_at or timezone.now()
    seconds = max(int((end - started_at).total_seconds()), 0)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
