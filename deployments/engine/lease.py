"""The run lease on a Deploy row, and its fence.

``lease_owner`` is ``next:<token>`` while a run message carrying ``token`` is on its way (due
before ``lease_expires_at``; messages with any other token are stale and dropped), or
``run:<worker>:<id>`` while a worker executes a step until ``lease_expires_at``. Every write a
run makes is fenced on still holding its ``run:`` value: its database writes in their
transaction, and each Fly or GitHub write (and each retry of a call) by ``Fence.check``, which
also renews the lease just before it.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments import task_names
from deployments.engine.records import audit, log_line
from deployments.models import Deploy, DeployLog, DeployStep, Preview
from hotdash import queue
from hotdash.integrations.http import ApiClient

State = Deploy.State
StepState = DeployStep.State
OPEN_STATES = (State.QUEUED, State.RUNNING, State.VERIFYING)


@dataclass(frozen=True)
class Next:
    """Send ``deploy_run(deploy_id, token)`` again after ``countdown`` seconds."""

    deploy_id: int
    token: str
    countdown: float


def next_token(deploy: Deploy, *, due_in: float, now: datetime) -> str:
    token = uuid.uuid4().hex
    deploy.lease_owner = f"next:{token}"
    deploy.lease_expires_at = now + timedelta(seconds=due_in + settings.DEPLOY_LEASE_SECONDS)
    return token


def note_lost_worker(deploy: Deploy) -> None:
    worker = deploy.lease_owner.split(":")[1] if ":" in deploy.lease_owner else "?"
    deploy.attempts += 1
    log_line(
        deploy,
        f"Worker {worker} stopped answering mid-step; resuming (attempt {deploy.attempts}).",
        DeployLog.Level.WARNING,
    )
    audit(
        deploy=deploy,
        actor="system",
        verb="deploy.resumed",
        data={"lost_worker": worker, "attempts": deploy.attempts},
    )


def end(deploy: Deploy, state: str, *, error: str = "") -> None:
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


class Fenced(Exception):  # noqa: N818 - a control-flow signal
    """This worker no longer holds the deploy's lease: stop without writing anything."""


class Fence:
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
