"""Real worker processes: SIGKILL mid-rollout; Redis down when an approver decides (drawer)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections import Counter

import pytest
from django.urls import reverse

from approvals.models import ApprovalRequest, AuditEvent, Decision
from deployments.models import Deploy, DeployStep
from deployments.services.deploys import deploy_queue, deploy_reconcile
from deployments.services.requests import deploy_request
from hotdash.celery import app as celery_app
from tests.engine.conftest import fast_health, make_deploy

UPDATE = r"/apps/hot-dash/machines/[0-9a-f]+"
WORKER_ENV = {
    "DEPLOY_LEASE_SECONDS": "2",
    "DEPLOY_POLL_SECONDS": "1",
    "DEPLOY_QUEUE_POLL_SECONDS": "1",
    "DEPLOY_FLY_LEASE_SECONDS": "2",
}


def run_sandbox_clock(sandbox) -> None:
    """Let the live sandbox's machines boot in real time (ten times faster)."""
    sandbox.world.clock.speed = 10.0
    sandbox.world.clock.frozen = False


def worker_env(sandbox, **extra: str) -> dict[str, str]:
    return {
        **WORKER_ENV,
        "FLY_API_URL": sandbox.fly_url,
        "GITHUB_API_URL": sandbox.github_url,
        **extra,
    }


def updates_per_machine(sandbox) -> Counter:
    return Counter(r.path.rsplit("/", 1)[1] for r in sandbox.calls("POST", UPDATE, service="fly"))


def wait_for(condition, *, timeout: float, reconcile: bool = False, what: str = "") -> None:
    """Poll ``condition``; with ``reconcile`` also play the beat's reconciler every second."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if reconcile:
            deploy_reconcile()
        time.sleep(0.5 if reconcile else 0.02)


@pytest.fixture
def engine_settings(settings):
    settings.DEPLOY_LEASE_SECONDS = 2
    settings.DEPLOY_DISPATCH_GRACE_SECONDS = 0
    return settings


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    "stuck_on",
    [
        "lease",  # taking the second batch's Fly lease: nothing sent for that machine yet
        "update",  # Fly accepts the machine update only after the worker is gone
    ],
)
def test_a_rollout_survives_its_worker_being_killed(
    demo, live_sandbox, requester, start_worker, engine_settings, stuck_on
):
    run_sandbox_clock(live_sandbox)
    production = fast_health(demo.environments.get(name="production"))
    release = demo.releases.get(version="1.3.0")
    deploy = make_deploy(production, release, requested_by=requester, queue=False)
    batches = deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH)
    [first_machine], [second_machine] = (batch.data["machines"] for batch in batches)
    # The worker gets stuck on a request for the second batch's machine: killed mid-step.
    path = f"/machines/{second_machine}/lease$" if stuck_on == "lease" else f"/{second_machine}$"
    stuck = live_sandbox.add_fault(
        "hang", service="fly", method="POST", path=path, seconds=120, times=1
    )
    worker = start_worker("w1", extra_env=worker_env(live_sandbox))
    deploy_queue(deploy=deploy, actor=requester)

    wait_for(lambda: stuck.hits == 1, timeout=60, what="the second batch to start")
    worker.kill()  # SIGKILL to the whole process group, mid-step, holding the run lease
    live_sandbox.world.hang_release.set()  # the request it was making still reaches Fly

    def hung() -> list[str]:
        calls = live_sandbox.calls("POST", service="fly")
        return [r.path.rsplit("/", 1)[1] for r in calls if r.fault == "hang"]

    wait_for(hung, timeout=10, what="the request in flight to reach Fly")
    assert hung() == ["lease" if stuck_on == "lease" else second_machine]
    landed = {first_machine: 1} | ({second_machine: 1} if stuck_on == "update" else {})
    assert updates_per_machine(live_sandbox) == Counter(landed)
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.RUNNING
    assert deploy.lease_owner.startswith("run:w1@")
    assert second_machine not in batches.get(data__batch=2).data.get("updated", [])  # unrecorded
    # The next worker to start resumes the deploy by itself, once w1's lease has expired.
    start_worker("w2", extra_env=worker_env(live_sandbox))

    wait_for(
        lambda: Deploy.objects.get(pk=deploy.pk).is_terminal,
        timeout=120,
        what="the second worker to finish the deploy",
    )

    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    machines = {m["id"] for m in live_sandbox.world.fly.summary()["hot-dash"]}
    assert updates_per_machine(live_sandbox) == Counter(dict.fromkeys(machines, 1))
    assert {r.status for r in live_sandbox.calls("POST", UPDATE, service="fly")} == {200}
    resumed = AuditEvent.objects.get(target_id=str(deploy.pk), verb="deploy.resumed")
    assert resumed.data["lost_worker"].startswith("w1@")  # the reconciler handed it over
    second = AuditEvent.objects.get(
        target_id=str(deploy.pk), verb="deploy.machine_updated", data__machine=second_machine
    )
    # The second worker found the update already applied (Fly is the truth) and sent none.
    assert second.data["changed"] is (stuck_on == "lease")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_on_free_port(engine_settings):
    """Point this process's Celery producer at a Redis port where nothing listens yet;
    ``start()`` brings a redis-server up there. The transport and publish-retry options stay
    the configured ones (production's Redis options when the suite runs with REDIS_URL)."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    saved = celery_app.conf.broker_url
    celery_app.conf.broker_url = url
    celery_app._after_fork()  # drop pooled connections to the previous broker
    servers: list[subprocess.Popen] = []

    class Broker:
        def __init__(self) -> None:
            self.url = url

        def start(self) -> None:
            servers.append(
                subprocess.Popen(
                    ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                    stdout=subprocess.DEVNULL,
                )
            )
            wait_for(lambda: _listening(port), timeout=10, what="redis-server")

        def kill(self) -> None:
            """SIGKILL the running redis-server: no shutdown, and (no persistence) no data."""
            servers[-1].kill()
            servers[-1].wait(timeout=10)

    yield Broker()
    for server in servers:
        server.terminate()
        server.wait(timeout=10)
    celery_app.conf.broker_url = saved
    celery_app._after_fork()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_redis_down_at_approval_loses_nothing_and_the_deploy_runs_once_it_is_back(
    client, demo, live_sandbox, requester, approver, start_worker, broker_on_free_port
):
    run_sandbox_clock(live_sandbox)
    production = fast_health(demo.environments.get(name="production"))
    deploy = deploy_request(
        environment=production,
        release=demo.releases.get(version="1.3.0"),
        requested_by=requester,
        reason="ship the audit export",
    )
    assert deploy.state == Deploy.State.AWAITING_APPROVAL
    client.force_login(approver)

    # The approver decides in the drawer while nothing listens on the broker's port.
    asked = time.monotonic()
    response = client.post(
        reverse("approvals:decide", args=[deploy.approval_request.pk]),
        {"decision": "approve", "comment": "go"},
        headers={"HX-Request": "true"},
    )

    assert time.monotonic() - asked < 5  # the publish gives up quickly; the drawer answers
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"])["approval-decided"] == {
        "approval": deploy.approval_request.pk,
        "deploy": deploy.pk,
        "decision": "approve",
    }
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.QUEUED
    assert deploy.approval_request.state == ApprovalRequest.State.APPROVED
    assert Decision.objects.get(request=deploy.approval_request).user == approver
    assert AuditEvent.objects.filter(verb="deploy.queued", target_id=str(deploy.pk)).exists()
    assert live_sandbox.calls("POST", service="fly") == []  # its message was never sent

    broker_on_free_port.start()
    start_worker("w1", extra_env=worker_env(live_sandbox, REDIS_URL=broker_on_free_port.url))

    wait_for(  # the worker sends it itself once connected: no beat needed
        lambda: Deploy.objects.get(pk=deploy.pk).is_terminal,
        timeout=120,
        what="the deploy to run after Redis came back",
    )

    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert AuditEvent.objects.filter(verb="deploy.resent", target_id=str(deploy.pk)).exists()
    machines = {m["id"] for m in live_sandbox.world.fly.summary()["hot-dash"]}
    assert updates_per_machine(live_sandbox) == Counter(dict.fromkeys(machines, 1))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_survives_redis_dying_mid_rollout_and_finishes_the_deploy_itself(
    demo, live_sandbox, requester, start_worker, broker_on_free_port
):
    run_sandbox_clock(live_sandbox)
    production = fast_health(demo.environments.get(name="production"))
    deploy = make_deploy(
        production, demo.releases.get(version="1.3.0"), requested_by=requester, queue=False
    )
    [second_machine] = deploy.steps.get(data__batch=2).data["machines"]
    stuck = live_sandbox.add_fault(
        "hang", service="fly", method="POST", path=f"/{second_machine}$", seconds=120, times=1
    )
    broker_on_free_port.start()
    worker = start_worker(
        "w1", extra_env=worker_env(live_sandbox, REDIS_URL=broker_on_free_port.url)
    )
    deploy_queue(deploy=deploy, actor=requester)
    wait_for(lambda: stuck.hits == 1, timeout=60, what="the second batch to start")

    # Redis dies (SIGKILL, and with it every message) while the step's task is unacknowledged,
    # and stays down until the worker has failed to reconnect to it.
    broker_on_free_port.kill()

    def reconnecting() -> bool:
        assert worker.process.poll() is None, f"the worker exited:\n{worker.log()[-3000:]}"
        return "Cannot connect to" in worker.log()

    wait_for(reconnecting, timeout=30, what="the worker to fail reconnecting")
    live_sandbox.world.hang_release.set()  # the update in flight still reaches Fly
    broker_on_free_port.start()

    # Nobody restarts anything, and nobody plays the beat's reconciler: the same worker
    # reconnects and resumes the deploy on its own.
    wait_for(
        lambda: Deploy.objects.get(pk=deploy.pk).is_terminal,
        timeout=120,
        what="the worker to finish the deploy after Redis came back",
    )

    assert worker.process.poll() is None, worker.log()[-3000:]
    assert "Unrecoverable error" not in worker.log()
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    machines = {m["id"] for m in live_sandbox.world.fly.summary()["hot-dash"]}
    assert updates_per_machine(live_sandbox) == Counter(dict.fromkeys(machines, 1))
