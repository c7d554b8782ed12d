"""The rollout, step by step, against the in-process sandbox."""

from __future__ import annotations

from approvals.models import AuditEvent
from deployments.models import Deploy, DeployStep, Environment
from tests.engine.conftest import make_deploy

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
        "deploy.github_deployment_created",
        "deploy.machine_updated",
        "deploy.machine_updated",
        "deploy.verifying",
        "deploy.succeeded",
    ]
    assert deploy.logs.filter(message__startswith="Succeeded").exists()


def test_a_machine_already_on_the_new_image_is_not_updated_again(
    production, release_130, requester, sandbox, driver
):
    first = machines(sandbox)[0]["id"]
    sandbox.world.fly.machines[first].config["image"] = release_130.image_ref
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
    sandbox.add_fault("status", service="github", method="POST", path="/deployments$", times=4)

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
    sandbox.add_fault("status", service="github", method="POST", path="/deployments$")

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    assert deploy.error.startswith("Gave up after 2 attempts")
    assert sandbox.calls("POST", service="fly") == []
