"""A worker that stalls past its lease (a long wait in an API client's retry loop, a frozen
process) and comes back after another worker took the deploy over writes nothing more to Fly
or GitHub: each write checks, and renews, the run's lease just before it."""

from __future__ import annotations

from collections import Counter

from django.conf import settings

from deployments.engine.claim import acquire
from deployments.engine.clients import api_client
from deployments.engine.lease import Fence
from deployments.engine.runner import Runner
from deployments.models import Deploy, DeployStep
from deployments.services.deploys import ENGINE_HOOKS, deploy_abort, deploy_reconcile
from hotdash.integrations import FlyClient
from hotdash.integrations.http import FLY
from tests.engine.conftest import make_deploy, pending_token

UPDATE = r"/apps/hot-dash/machines/[0-9a-f]+"


def writes(calls) -> list[str]:
    return [f"{r.service} {r.method} {r.path}" for r in calls if r.method != "GET"]


def updates_per_machine(sandbox) -> Counter:
    return Counter(r.path.rsplit("/", 1)[1] for r in sandbox.calls("POST", UPDATE, service="fly"))


def test_a_worker_back_from_a_retry_wait_after_a_takeover_writes_nothing_more(
    production, release_130, requester, sandbox, driver, monkeypatch
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    [first], [second] = (
        step.data["machines"] for step in deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH)
    )
    # Mid-rollout, taking the second machine's Fly lease answers 503 once: the client waits
    # to retry, and while it waits its lease runs out and another worker finishes the deploy.
    sandbox.add_fault(
        "status", service="fly", method="POST", path=f"/machines/{second}/lease$", times=1
    )
    taken_over: list[int] = []

    def takeover(seconds: float) -> None:
        if taken_over:
            return
        assert updates_per_machine(sandbox) == Counter({first: 1})
        driver.tick(settings.DEPLOY_LEASE_SECONDS + 1)
        assert deploy_reconcile() == [deploy.pk]
        assert driver.run(deploy, worker="w2").state == Deploy.State.SUCCEEDED
        taken_over.append(len(sandbox.calls()))

    fly_api = api_client(FLY, base_url=settings.FLY_API_URL, token=settings.FLY_API_TOKEN)
    monkeypatch.setattr(fly_api, "sleep", takeover)

    driver.run(deploy, worker="w1")  # ends when w1 comes back from its wait, fenced, quietly

    [mark] = taken_over
    assert writes(sandbox.calls()[mark:]) == []
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert updates_per_machine(sandbox) == Counter({first: 1, second: 1})
    assert deploy.logs.filter(message__startswith="Worker w1 stopped answering").exists()


def test_a_fenced_runner_that_fails_posts_no_github_status(
    production, release_130, requester, approver, sandbox, driver
):
    deploy = driver.run(
        make_deploy(production, release_130, requested_by=requester),
        until=lambda d: d.state == Deploy.State.VERIFYING,
    )
    assert deploy.github_deployment_id is not None
    deploy_abort(deploy=deploy, actor=approver, reason="wrong build")  # fails at the next run
    stale, run, _ = acquire(
        deploy_id=deploy.pk, token=pending_token(deploy), worker="w1", hooks=ENGINE_HOOKS
    )
    driver.tick(settings.DEPLOY_LEASE_SECONDS + 1)  # w1 stalls past its lease
    assert deploy_reconcile() == [deploy.pk]
    mark = len(sandbox.calls())
    deploy = driver.run(deploy, worker="w2")  # w2 carries on: the abort fails it, reported
    assert deploy.state == Deploy.State.FAILED
    status = (
        f"github POST /repos/{production.app.github_owner}/{production.app.github_repo}"
        f"/deployments/{deploy.github_deployment_id}/statuses"
    )
    assert writes(sandbox.calls()[mark:]) == [status]
    runner = Runner(
        stale,
        Fence(deploy_id=deploy.pk, run=run),
        FlyClient(api_client(FLY, base_url=settings.FLY_API_URL, token=settings.FLY_API_TOKEN)),
        hooks=ENGINE_HOOKS,
    )

    assert runner.drive() is None  # w1 comes back and would fail the deploy (aborted) too

    assert writes(sandbox.calls()[mark:]) == [status]  # w2's only
    assert deploy.logs.filter(message__startswith="Aborted on request").count() == 1
