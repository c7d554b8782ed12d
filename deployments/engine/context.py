"""What a run of the engine works with: the signals a step raises, the progress it commits
(fenced on the run lease), and the Fly machines it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments.engine import desired
from deployments.engine.hooks import Hooks
from deployments.engine.lease import Fence, Fenced
from deployments.engine.records import audit, log_line
from deployments.models import Deploy, DeployLog, DeployStep, Environment
from hotdash.integrations import APIError, FlyClient, PermanentAPIError
from hotdash.integrations.fly import Machine

StepState = DeployStep.State
GONE = ("destroying", "destroyed")  # Fly machine states that will never take an update


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


@dataclass
class Progress:
    """What one committed unit of worker progress writes."""

    deploy_fields: dict[str, Any] = field(default_factory=dict)
    step: DeployStep | None = None
    step_fields: dict[str, Any] = field(default_factory=dict)
    logs: list[tuple[str, str]] = field(default_factory=list)
    audits: list[tuple[str, dict]] = field(default_factory=list)


MachinesRead = dict[str, Machine] | APIError


def read_machines(fly: FlyClient, app: str) -> dict[str, Machine]:
    """The Fly app's machines that can still take an update, by id; none if the app is gone
    (the plan's first batch creates it)."""
    try:
        return {m.id: m for m in fly.list_machines(app) if m.state not in GONE}
    except PermanentAPIError as error:
        if error.status != 404:
            raise
        return {}


def read_machines_kept(fly: FlyClient, app: str) -> MachinesRead:
    try:
        return read_machines(fly, app)
    except APIError as error:
        return error


class RunContext:
    """What a step sees: the deploy, its environment, the fenced Fly client, and progress
    committed fenced on the run lease. GitHub hears from the run through the outbox
    (``hooks.github_report``)."""

    def __init__(
        self,
        deploy: Deploy,
        fence: Fence,
        fly: FlyClient,
        *,
        hooks: Hooks,
        machines: MachinesRead | None = None,
    ) -> None:
        self.deploy = deploy
        self.fence = fence
        self.run = fence.run
        self.fly = fly
        self.hooks = hooks
        self.machines = machines  # read before the claim, for the artifact step
        self.env: Environment = deploy.environment
        self.step: DeployStep | None = None  # the step being run, for fail()

    def commit(self, progress: Progress) -> None:
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
                log_line(self.deploy, message, level)
            for verb, data in progress.audits:
                audit(deploy=self.deploy, actor="worker", verb=verb, data=data)

    def start_step(self, step: DeployStep, message: str) -> None:
        if step.state == StepState.PENDING:
            self.commit(
                Progress(
                    step=step,
                    step_fields={"state": StepState.RUNNING, "started_at": timezone.now()},
                    logs=[(DeployLog.Level.INFO, message)],
                )
            )

    def finish_step(self, step: DeployStep, detail: str) -> None:
        now = timezone.now()
        self.commit(
            Progress(
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

    def machine_metadata(self) -> dict[str, str]:
        return {
            "hotdash_environment": str(self.env.pk),
            "hotdash_deploy": str(self.deploy.pk),
        }

    @property
    def declared(self) -> desired.DeclaredMachineConfig:
        return desired.declared_config(self.env)

    def changed_machines(self) -> list[str]:
        machines: list[str] = []
        for data in self.deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).values_list(
            "data", flat=True
        ):
            machines += data.get("updated", [])
        return machines
