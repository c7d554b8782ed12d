"""The rollout deadline: a deploy still running past its environment's deadline is aborted
("deadline exceeded") and what it changed is rolled back, like any abort.

These tests run on the real clock (the deadline is wall time after the claim): the sandbox
makes the first machine update slower than the whole deadline, so the deploy is past it by
the time it could start its second batch, however fast the machine running the test is.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from approvals.models import AuditEvent
from deployments.models import Deploy, DeployStep
from tests.engine.conftest import Driver, fast_health, make_deploy

DEADLINE_SECONDS = 4
UPDATE_LATENCY_SECONDS = DEADLINE_SECONDS + 1
UPDATE = r"/apps/hot-dash/machines/[0-9a-f]+"


class WallClock:
    """The driver's traveller on the real clock: a tick really waits (the sandbox's frozen
    clock is advanced by the same amount, so machines boot and pass their checks)."""

    def shift(self, seconds: float) -> None:
        time.sleep(seconds)


@pytest.fixture
def real_time_driver(sandbox, settings, run_messages):
    settings.DEPLOY_POLL_SECONDS = 1
    settings.DEPLOY_QUEUE_POLL_SECONDS = 1
    return Driver(sandbox=sandbox, traveller=WallClock(), published=run_messages)


@pytest.fixture
def production(demo, sandbox):
    production = fast_health(demo.environments.get(name="production"))
    production.verification_window_seconds = 1
    production.rollout_deadline_seconds = DEADLINE_SECONDS
    production.save()
    return production


def test_a_rollout_past_its_deadline_is_aborted_and_rolled_back(
    production, release_130, requester, real_time_driver, sandbox
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    first, second = (
        step.data["machines"][0]
        for step in deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).order_by("position")
    )
    slow = sandbox.add_fault(
        "latency",
        service="fly",
        method="POST",
        path=f"/machines/{first}$",
        seconds=UPDATE_LATENCY_SECONDS,
        times=1,
    )

    real_time_driver.run(deploy)

    assert slow.hits == 1
    assert deploy.state == Deploy.State.FAILED
    assert (
        deploy.error
        == f"Aborted: deadline exceeded (still running {DEADLINE_SECONDS} s after it started)."
    )
    assert (deploy.abort_requested_at - deploy.started_at).total_seconds() >= DEADLINE_SECONDS
    asked = AuditEvent.objects.get(verb="deploy.abort_requested", target_id=str(deploy.pk))
    assert asked.actor_name == "worker"
    assert asked.data == {"reason": "deadline exceeded", "deadline_seconds": DEADLINE_SECONDS}
    assert AuditEvent.objects.filter(verb="deploy.aborted", target_id=str(deploy.pk)).exists()
    second_batch = deploy.steps.get(kind=DeployStep.Kind.UPDATE_BATCH, data__batch=2)
    assert second_batch.state == DeployStep.State.SKIPPED  # stopped before it
    assert not second_batch.data.get("updated")

    rollback = Deploy.objects.get(kind=Deploy.Kind.AUTO_ROLLBACK, rollback_of=deploy)
    assert rollback.reason.endswith("was aborted by worker: deadline exceeded")
    real_time_driver.run(rollback)
    assert rollback.state == Deploy.State.SUCCEEDED, rollback.error

    updates = Counter(
        r.path.rsplit("/", 1)[1] for r in sandbox.calls("POST", UPDATE, service="fly")
    )
    assert updates == {first: 2}  # forward, then back; the second machine never touched
    assert second not in updates
    images = {m["id"]: m["image"] for m in sandbox.world.fly.summary()["hot-dash"]}
    assert images[first] == images[second] == deploy.previous_image_ref


def test_without_a_deadline_the_same_slow_rollout_finishes(
    production, release_130, requester, real_time_driver, sandbox
):
    production.rollout_deadline_seconds = None
    production.save()
    deploy = make_deploy(production, release_130, requested_by=requester)
    first = deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).first().data["machines"][0]
    sandbox.add_fault(
        "latency",
        service="fly",
        method="POST",
        path=f"/machines/{first}$",
        seconds=UPDATE_LATENCY_SECONDS,
        times=1,
    )

    real_time_driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
