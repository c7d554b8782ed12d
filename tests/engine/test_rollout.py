"""The rollout, step by step, against the in-process sandbox."""

from __future__ import annotations

import httpx
from django.db import connection

from approvals.models import AuditEvent
from deployments.engine.clients import api_client, deploy_clients_close
from deployments.engine.desired import declared_config, machine_config
from deployments.models import Deploy, DeployStep, Environment
from deployments.services.deploys import deploy_cancel, deploy_execute
from hotdash.integrations import fly_client, use_transport
from hotdash.integrations.http import FLY
from tests.engine.conftest import make_deploy, pending_token
from tests.fixtures.sandbox import SandboxTransport

UPDATE = r"/apps/hot-dash/machines/[0-9a-f]+"


def machines(sandbox, app="hot-dash"):
    return sandbox.world.fly.summary()[app]


def test_a_queued_deploy_rolls_out_batch_by_batch_and_succeeds(
    production, release_130, requester, sandbox, driver
):
    before = {m["id"] for m in machines(sandbox)}
    deploy = make_deploy(production, release_130, requested_by=requester)

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert deploy.health_verified is True
    assert deploy.attempts == 1
    updates = sandbox.calls("POST", UPDATE, service="fly")
    assert sorted(r.path.rsplit("/", 1)[1] for r in updates) == sorted(before)
    assert {m["image"] for m in machines(sandbox)} == {release_130.image_ref}
    assert all(m["healthy"] for m in machines(sandbox))
    production.refresh_from_db()
    assert production.current_release == release_130
    assert production.current_image_ref == release_130.image_ref
    assert production.health == Environment.Health.HEALTHY
    steps = list(deploy.steps.all())
    assert [s.state for s in steps] == [DeployStep.State.DONE] * len(steps)
    batches = [s for s in steps if s.kind == DeployStep.Kind.UPDATE_BATCH]
    assert len(batches) == 2  # 30 % of 2 machines: one at a time
    assert batches[1].started_at >= batches[0].finished_at
    assert all(b.data["updated"] == b.data["healthy"] == b.data["machines"] for b in batches)
    github = sandbox.world.github
    [deployment] = github.deployments.values()
    assert deployment["id"] == deploy.github_deployment_id
    assert deployment["payload"]["hotdash_key"] == str(deploy.pk)
    statuses = github.deployment_statuses[deploy.github_deployment_id]
    assert [s["state"] for s in statuses] == ["in_progress", "success"]
    assert statuses[-1]["environment_url"] == production.url
    verbs = list(
        AuditEvent.objects.filter(target_type="deploy", target_id=str(deploy.pk))
        .order_by("id")
        .values_list("verb", flat=True)
    )
    assert verbs == [
        "deploy.queued",
        "deploy.started",
        "deploy.machine_updated",
        "deploy.github_deployment_created",  # by the outbox, off the rollout
        "deploy.machine_updated",
        "deploy.verifying",
        "deploy.succeeded",
    ]
    assert deploy.logs.filter(message__startswith="Succeeded").exists()


def test_a_machine_already_on_the_new_image_is_not_updated_again(
    production, release_130, requester, sandbox, driver
):
    first = machines(sandbox)[0]["id"]
    machine = sandbox.world.fly.machines[first]
    machine.config = machine_config(
        declared_config(production), image=release_130.image_ref, existing=machine.config
    )
    deploy = make_deploy(production, release_130, requested_by=requester)

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    updated = [r.path.rsplit("/", 1)[1] for r in sandbox.calls("POST", UPDATE, service="fly")]
    assert first not in updated
    assert len(updated) == 1
    assert deploy.logs.filter(message__contains=f"{first} already runs").exists()


def test_a_changed_digest_fails_the_deploy_before_fly_is_touched(
    production, release_130, requester, sandbox, driver
):
    # Another digest was never rehearsed on staging; the promotion gate would hold the deploy
    # at the claim. This is about the artifact step, so production has no promotion rule here.
    production.promotion_min_healthy_minutes = None
    production.save(update_fields=["promotion_min_healthy_minutes"])
    deploy = make_deploy(production, release_130, requested_by=requester)
    release_130.image_digest = "sha256:" + "f" * 64
    release_130.save()

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    assert "image digest is now sha256:fff" in deploy.error
    assert "Nothing was changed" in deploy.error
    assert sandbox.calls("POST", service="fly") == []
    assert not Deploy.objects.filter(kind=Deploy.Kind.AUTO_ROLLBACK).exists()
    assert deploy.steps.get(kind=DeployStep.Kind.VERIFY_ARTIFACT).state == DeployStep.State.FAILED


def test_a_retryable_upstream_error_reschedules_and_counts_an_attempt(
    production, release_130, requester, sandbox, driver, settings
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    # More 503s than the client retries itself: the step gives up and is re-scheduled.
    sandbox.add_fault("status", service="fly", method="GET", path="/machines$", times=4)

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert deploy.attempts == 2
    assert deploy.logs.filter(message__contains="retrying in").exists()
    assert len(sandbox.world.github.deployments) == 1


def test_attempts_are_capped_with_a_clear_error(
    production, release_130, requester, sandbox, driver, settings
):
    settings.DEPLOY_MAX_ATTEMPTS = 2
    deploy = make_deploy(production, release_130, requested_by=requester)
    sandbox.add_fault("status", service="fly", method="GET", path="/machines$")

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    assert deploy.error.startswith("Gave up after 2 attempts")
    assert sandbox.calls("POST", service="fly") == []


class Spy(httpx.BaseTransport):
    """The sandbox transport, remembering for every request what the database held and how
    many of the engine's transactions were open when it was made."""

    def __init__(self, inner: httpx.BaseTransport, deploy: Deploy) -> None:
        self.inner = inner
        self.deploy = deploy
        self.outer = len(connection.atomic_blocks)  # the test's own transaction
        self.seen: list[dict] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deploy = Deploy.objects.get(pk=self.deploy.pk)
        self.seen.append(
            {
                "request": f"{request.method} {request.url.path}",
                "open_transactions": len(connection.atomic_blocks) - self.outer,
                "state": deploy.state,
                "steps": set(deploy.steps.values_list("state", flat=True)),
                "logs": list(deploy.logs.values_list("message", flat=True)),
                "verbs": list(
                    AuditEvent.objects.filter(target_type="deploy", target_id=str(deploy.pk))
                    .order_by("id")
                    .values_list("verb", flat=True)
                ),
            }
        )
        return self.inner.handle_request(request)

    def requests(self) -> list[str]:
        return [seen["request"] for seen in self.seen]


def test_a_queued_deploy_reads_its_machines_before_the_claim_and_writes_only_after_it(
    production, release_130, requester, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    spy = Spy(SandboxTransport(app=sandbox.app), deploy)

    with use_transport(spy):
        driver.run_once(deploy)

    # The first call is the machines read, made before the claim: nothing written yet.
    assert spy.seen[0] == {
        "request": "GET /fly/v1/apps/hot-dash/machines",
        "open_transactions": 0,
        "state": Deploy.State.QUEUED,
        "steps": {DeployStep.State.PENDING},
        "logs": [],
        "verbs": ["deploy.queued"],
    }
    # The artifact step used that read; every later call comes after the claim committed.
    assert spy.requests().count("GET /fly/v1/apps/hot-dash/machines") == 1
    writes = [seen for seen in spy.seen if not seen["request"].startswith("GET ")]
    assert writes
    for seen in writes:
        assert seen["open_transactions"] == 0
        assert seen["state"] == Deploy.State.RUNNING
        assert seen["verbs"][:2] == ["deploy.queued", "deploy.started"]
    verify = deploy.steps.get(kind=DeployStep.Kind.VERIFY_ARTIFACT)
    assert verify.state == DeployStep.State.DONE
    assert verify.detail.endswith(
        "Fly app hot-dash: 2 machine(s), 2 to update, 0 already on this image."
    )


def test_only_a_deploy_queued_on_an_idle_environment_is_sent_with_its_fly_app(
    production, release_130, requester, sandbox, driver
):
    first = make_deploy(production, release_130, requested_by=requester)
    second = make_deploy(production, release_130, requested_by=requester)

    assert driver.message(first) == [first.pk, pending_token(first), "hot-dash"]
    assert driver.message(second) == [second.pk, pending_token(second)]

    spy = Spy(SandboxTransport(app=sandbox.app), second)
    with use_transport(spy):
        # The second's message arrives first: no read, the claim waits its turn.
        assert driver.run_once(second) is not None
    second.refresh_from_db()
    assert second.state == Deploy.State.QUEUED
    assert second.logs.last().message.endswith(f"busy with deploy #{first.pk}.")
    assert spy.requests() == []


def test_a_message_that_claims_nothing_discards_its_read_and_writes_nothing(
    production, release_130, requester, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    first_message = driver.message(deploy)
    driver.run_once(deploy)
    calls = len(sandbox.calls())

    # The broker delivers the first message again: one read, then dropped by the lease.
    deploy_id, token, fly_app = first_message
    assert deploy_execute(deploy_id=deploy_id, token=token, worker="w", fly_app=fly_app) is None
    assert [(c.method, c.path) for c in sandbox.calls()[calls:]] == [
        ("GET", "/apps/hot-dash/machines")
    ]


def test_a_read_of_the_app_the_environment_left_is_not_used(
    production, release_130, requester, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    Environment.objects.filter(pk=production.pk).update(fly_app_name="hot-dash-moved")

    deploy = driver.run(deploy)

    # The message named hot-dash; the plan is checked against the app the environment has.
    assert deploy.state == Deploy.State.FAILED
    assert "no longer exist in Fly app hot-dash-moved" in deploy.error
    assert sandbox.calls("GET", service="fly")[-1].path == "/apps/hot-dash-moved/machines"


def test_messages_that_cannot_claim_make_no_call_at_all(
    production, release_130, requester, sandbox, driver
):
    stale = make_deploy(production, release_130, requested_by=requester)
    cancelled = make_deploy(production, release_130, requested_by=requester)
    deploy_cancel(deploy=cancelled, actor=requester, reason="not today")
    calls = len(sandbox.calls())

    deploy_execute(deploy_id=stale.pk, token="an-old-token", worker="w")
    deploy_execute(deploy_id=cancelled.pk, token="", worker="w")
    assert len(sandbox.calls()) == calls

    Deploy.objects.filter(pk=stale.pk).update(state=Deploy.State.RUNNING)
    behind = make_deploy(production, release_130, requested_by=requester)
    calls = len(sandbox.calls())
    driver.run_once(behind)  # its environment has an active deploy

    assert len(sandbox.calls()) == calls
    behind.refresh_from_db()
    assert behind.state == Deploy.State.QUEUED
    assert behind.logs.last().message.endswith(f"busy with deploy #{stale.pk}.")


def test_a_failed_read_before_the_claim_is_handled_by_the_claimed_deploy(
    production, release_130, requester, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    # More 503s than the client retries itself.
    sandbox.add_fault(
        "status", service="fly", method="GET", path="/apps/hot-dash/machines$", times=4
    )

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert deploy.attempts == 2
    assert deploy.logs.filter(message__contains="retrying in").exists()


def test_a_planned_machine_gone_from_fly_fails_the_deploy_before_anything_changes(
    production, release_130, requester, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    gone = machines(sandbox)[1]["id"]
    with fly_client() as fly:
        fly.delete_machine("hot-dash", gone, force=True)
    posts_before = len(sandbox.calls("POST", service="fly"))

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    assert deploy.error.startswith(f"Machine(s) {gone} of the plan no longer exist")
    assert len(sandbox.calls("POST", service="fly")) == posts_before
    assert sandbox.calls(service="github") == []
    assert deploy.steps.get(kind=DeployStep.Kind.VERIFY_ARTIFACT).state == DeployStep.State.FAILED
    assert not Deploy.objects.filter(rollback_of=deploy).exists()


def test_run_messages_share_api_clients_but_never_across_test_transports(sandbox, settings):
    def build():
        return api_client(FLY, base_url=settings.FLY_API_URL, token=settings.FLY_API_TOKEN)

    first = build()
    assert build() is first
    with use_transport(SandboxTransport(app=sandbox.app)):
        other = build()
    assert other is not first
    assert first.http.is_closed  # replaced, so closed
    settings.FLY_API_URL = "http://elsewhere.test/fly/v1"
    latest = build()
    assert latest is not other
    assert str(latest.http.base_url).startswith("http://elsewhere.test/")

    deploy_clients_close()
    assert latest.http.is_closed
    assert build() is not latest
