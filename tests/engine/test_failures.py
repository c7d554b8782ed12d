"""Failed health checks, automatic rollback, cancel, abort, supersede."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent
from deployments.models import Deploy, DeployStep, Environment
from deployments.services.deploys import (
    deploy_abort,
    deploy_cancel,
    deploy_supersede,
)
from hotdash.errors import Refused
from hotdash.integrations import fly_client
from tests.engine.conftest import make_deploy

UPDATE = r"/apps/hot-dash/machines/[0-9a-f]+"


def updates(sandbox) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in sandbox.calls("POST", UPDATE, service="fly")]


def images(sandbox) -> dict[str, str]:
    return {m["id"]: m["image"] for m in sandbox.world.fly.summary()["hot-dash"]}


def verbs(deploy: Deploy) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="deploy", target_id=str(deploy.pk))
        .order_by("id")
        .values_list("verb", flat=True)
    )


def test_failing_health_checks_stop_the_rollout_and_roll_back_what_changed(
    production, release_130, requester, sandbox, driver
):
    live = production.current_image_ref
    sandbox.mark_image(release_130.image_ref, healthy=False)
    deploy = make_deploy(production, release_130, requested_by=requester)

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    assert deploy.health_verified is False
    assert deploy.error.startswith("Health checks failed after")
    assert "critical" in deploy.error
    [changed] = updates(sandbox)  # the second batch never started
    batches = deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH)
    assert [b.state for b in batches] == [DeployStep.State.FAILED, DeployStep.State.SKIPPED]
    record = deploy.steps.get(kind=DeployStep.Kind.ROLLBACK_MACHINES)
    rollback = Deploy.objects.get(rollback_of=deploy)
    assert record.data == {"machines": [changed], "rollback_deploy": rollback.pk}
    assert rollback.kind == Deploy.Kind.AUTO_ROLLBACK
    assert rollback.state == Deploy.State.QUEUED
    assert rollback.requested_by_system == "system"
    assert rollback.image_ref == live
    # Only the changed machine goes back: one batch, numbered as one.
    assert list(
        rollback.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).values_list("title", "data")
    ) == [(f"Batch 1/1: update {changed} to v1.2.0", {"machines": [changed], "batch": 1})]
    assert deploy.logs.filter(message__contains=f"deploy #{rollback.pk}").exists()
    github = sandbox.world.github.deployment_statuses[deploy.github_deployment_id]
    assert github[-1]["state"] == "failure"
    report = deploy.steps.get(kind=DeployStep.Kind.GITHUB_STATUS)
    assert report.state == DeployStep.State.DONE and "failure queued" in report.detail
    assert verbs(deploy)[-1] == "deploy.failed"
    assert verbs(rollback) == ["deploy.auto_rollback_started", "deploy.queued"]
    assert rollback.reason.startswith(
        f"Automatic rollback after deploy #{deploy.pk} failed its health checks: Health checks"
    )
    started = AuditEvent.objects.get(verb="deploy.auto_rollback_started")
    assert started.data["cause"] == "health"
    production.refresh_from_db()
    assert production.health == Environment.Health.FAILING
    # The automatic rollback sticks like a person's: release marked bad, environment locked.
    release_130.refresh_from_db()
    assert release_130.is_bad and not release_130.is_deployable
    assert f"deploy #{deploy.pk}" in release_130.bad_reason
    assert production.is_locked and f"#{rollback.pk}" in production.lock_reason
    assert AuditEvent.objects.filter(verb="release.marked_bad", actor_name="system").count() == 1

    rollback = driver.run(rollback)  # the lock stops new requests, not the rollback itself

    assert rollback.state == Deploy.State.SUCCEEDED, rollback.error
    assert updates(sandbox) == [changed, changed]  # forward once, back once; the other untouched
    assert set(images(sandbox).values()) == {live}
    production.refresh_from_db()
    assert production.current_image_ref == live
    assert production.current_release == deploy.previous_release
    assert production.health == Environment.Health.HEALTHY


def test_a_failing_automatic_rollback_does_not_roll_back_again(
    production, release_130, requester, sandbox, driver
):
    sandbox.mark_image(release_130.image_ref, healthy=False)
    sandbox.mark_image(production.current_image_ref, healthy=False)
    deploy = driver.run(make_deploy(production, release_130, requested_by=requester))
    rollback = Deploy.objects.get(rollback_of=deploy)

    rollback = driver.run(rollback)

    assert rollback.state == Deploy.State.FAILED
    assert not Deploy.objects.filter(rollback_of=rollback).exists()
    assert rollback.logs.filter(message__contains="needs attention").exists()


def test_cancel_a_queued_deploy_and_refuse_to_cancel_a_running_one(
    production, release_130, requester, approver, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    deploy_cancel(deploy=deploy, actor=approver, reason="wrong release")
    assert deploy.state == Deploy.State.CANCELLED
    assert verbs(deploy)[-1] == "deploy.cancelled"
    assert driver.run_once(deploy) is None  # its message arrives and is dropped
    assert sandbox.calls("POST", service="fly") == []

    running = make_deploy(production, release_130, requested_by=requester)
    driver.run(running, until=lambda d: d.state == Deploy.State.RUNNING)
    with pytest.raises(Refused) as refused:
        deploy_cancel(deploy=running, actor=approver, reason="too late")
    assert refused.value.code == "not_cancellable"
    running.refresh_from_db()
    assert running.state == Deploy.State.RUNNING


def test_abort_finishes_the_current_batch_then_rolls_back(
    production, release_130, requester, admin_user, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    driver.run(deploy, until=lambda d: len(updates(sandbox)) == 1)
    deploy_abort(deploy=deploy, actor=admin_user, reason="customer report")

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    assert deploy.error.startswith("Aborted on request")
    first, second = deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH)
    assert first.state == DeployStep.State.DONE  # the batch in flight finished healthy
    assert second.state == DeployStep.State.SKIPPED
    assert verbs(deploy)[-1] == "deploy.aborted"
    assert "deploy.abort_requested" in verbs(deploy)
    rollback = Deploy.objects.get(rollback_of=deploy)
    said = f"deploy #{deploy.pk} was aborted by root: customer report"
    assert rollback.reason == f"Automatic rollback after {said}"
    assert deploy.logs.filter(message__endswith=f"(deploy #{rollback.pk}): {said}").exists()
    started = AuditEvent.objects.get(verb="deploy.auto_rollback_started")
    assert (started.data["cause"], started.data["reason"]) == ("aborted", rollback.reason)
    # An abort says nothing against the release: it is not marked bad, nothing is locked.
    release_130.refresh_from_db()
    production.refresh_from_db()
    assert not release_130.is_bad and release_130.is_deployable
    assert not production.is_locked
    assert not AuditEvent.objects.filter(
        verb__in=("release.marked_bad", "environment.locked")
    ).exists()

    rollback = driver.run(rollback)

    assert rollback.state == Deploy.State.SUCCEEDED
    assert set(images(sandbox).values()) == {production.current_image_ref}


def test_supersede_stops_a_running_deploy_after_its_batch_without_rollback(
    production, release_130, requester, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    newer = make_deploy(production, release_130, requested_by=requester, queue=False)
    driver.run(deploy, until=lambda d: len(updates(sandbox)) == 1)
    deploy_supersede(old=deploy, new=newer, actor="github")

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUPERSEDED
    assert deploy.superseded_by == newer
    assert not Deploy.objects.filter(rollback_of=deploy).exists()
    assert len(updates(sandbox)) == 1
    assert verbs(deploy)[-2:] == ["deploy.supersede_requested", "deploy.superseded"]


def test_a_deploy_waits_while_its_environment_is_busy_then_runs_in_order(
    production, release_130, requester, sandbox, driver
):
    first = make_deploy(production, release_130, requested_by=requester)
    second = make_deploy(production, release_130, requested_by=requester)

    assert driver.run_once(second) is not None  # FIFO: the older one goes first
    second.refresh_from_db()
    assert second.state == Deploy.State.QUEUED
    assert (
        second.logs.last().message
        == f"Waiting: environment production is busy with deploy #{first.pk}."
    )

    driver.run(first, until=lambda d: d.state == Deploy.State.RUNNING)
    driver.run_once(second)
    second.refresh_from_db()
    assert second.state == Deploy.State.QUEUED
    assert second.logs.filter(message__startswith="Waiting").count() == 1  # said once

    assert driver.run(first).state == Deploy.State.SUCCEEDED
    second = driver.run(second)
    assert second.state == Deploy.State.SUCCEEDED
    assert second.started_at >= first.finished_at


def test_a_machine_leased_by_someone_else_for_too_long_fails_the_deploy_naming_the_holder(
    production, release_130, requester, sandbox, driver, settings
):
    settings.DEPLOY_FLY_LEASE_WAIT_SECONDS = 30
    deploy = make_deploy(production, release_130, requested_by=requester)
    first, second = (
        b.data["machines"][0] for b in deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH)
    )
    with fly_client() as fly:  # an operator's flyctl, renewing its lease all along
        fly.acquire_lease("hot-dash", second, ttl=3600, description="flyctl by ops@example.com")

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    assert deploy.error.startswith(
        f"Machine {second} has been leased by sandbox@hotdash.example (flyctl by ops@example.com"
    )
    assert "for more than 30 s (DEPLOY_FLY_LEASE_WAIT_SECONDS)" in deploy.error
    assert updates(sandbox) == [first]  # the leased machine was never touched
    assert deploy.logs.filter(message__contains=f"{second} is leased by").count() == 1
    batch = deploy.steps.get(kind=DeployStep.Kind.UPDATE_BATCH, data__batch=2)
    assert batch.state == DeployStep.State.FAILED
    rollback = Deploy.objects.get(rollback_of=deploy)
    assert rollback.state == Deploy.State.QUEUED  # the first machine goes back
    assert rollback.reason.startswith(
        f"Automatic rollback after deploy #{deploy.pk} failed with an error: Machine {second}"
    )
    assert AuditEvent.objects.get(verb="deploy.auto_rollback_started").data["cause"] == "error"
    # An error is not the release's fault: no bad mark, no lock.
    release_130.refresh_from_db()
    production.refresh_from_db()
    assert not release_130.is_bad
    assert not production.is_locked


def test_a_lease_that_ends_within_the_limit_is_waited_out(
    production, release_130, requester, sandbox, driver, settings
):
    settings.DEPLOY_FLY_LEASE_WAIT_SECONDS = 30
    deploy = make_deploy(production, release_130, requested_by=requester)
    machine = deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH)[0].data["machines"][0]
    with fly_client() as fly:
        fly.acquire_lease("hot-dash", machine, ttl=10, description="flyctl by ops@example.com")

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert deploy.logs.filter(message__contains=f"{machine} is leased by").count() == 1
    assert all("lease_wait" not in s.data for s in deploy.steps.all())
