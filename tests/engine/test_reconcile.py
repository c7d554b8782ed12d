"""Leases, stale messages, lost workers and the reconciler."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from approvals.models import AuditEvent
from deployments.models import Deploy
from deployments.services.deploys import deploy_execute, deploy_reconcile
from tests.engine.conftest import make_deploy, pending_token


def test_a_stale_or_duplicate_message_is_dropped(production, release_130, requester, driver):
    deploy = make_deploy(production, release_130, requested_by=requester)

    assert deploy_execute(deploy_id=deploy.pk, token="not-the-token", worker="w2") is None

    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.QUEUED
    assert deploy.lease_owner.startswith("next:")


def test_a_message_arriving_while_another_worker_runs_a_step_is_dropped(
    production, release_130, requester, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    token = pending_token(deploy)
    Deploy.objects.filter(pk=deploy.pk).update(
        lease_owner="run:w1:abcd", lease_expires_at=timezone.now() + timedelta(seconds=60)
    )

    assert deploy_execute(deploy_id=deploy.pk, token=token, worker="w2") is None

    deploy.refresh_from_db()
    assert deploy.lease_owner == "run:w1:abcd"


def test_the_reconciler_resends_lost_messages_and_resumes_lost_workers(
    production, release_130, requester, sandbox, driver, settings
):
    lost_message = make_deploy(production, release_130, requested_by=requester)
    assert deploy_reconcile() == []  # within the dispatch grace: its message is on its way
    driver.tick(settings.DEPLOY_DISPATCH_GRACE_SECONDS + settings.DEPLOY_LEASE_SECONDS + 1)
    old = pending_token(lost_message)

    assert deploy_reconcile() == [lost_message.pk]
    assert pending_token(lost_message) != old  # the lost message, if it ever comes, is stale

    driver.run(lost_message, until=lambda d: d.state == Deploy.State.RUNNING)
    Deploy.objects.filter(pk=lost_message.pk).update(
        lease_owner="run:dead-worker:1", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert deploy_reconcile() == [lost_message.pk]
    resumed = driver.run(lost_message)

    assert resumed.state == Deploy.State.SUCCEEDED, resumed.error
    assert resumed.attempts == 2
    assert AuditEvent.objects.filter(
        verb="deploy.resumed", target_id=str(resumed.pk), data__lost_worker="dead-worker"
    ).exists()
    assert resumed.logs.filter(message__startswith="Worker dead-worker stopped").exists()


def test_a_deploy_whose_workers_keep_dying_gives_up(
    production, release_130, requester, driver, settings
):
    settings.DEPLOY_MAX_ATTEMPTS = 2
    deploy = make_deploy(production, release_130, requested_by=requester)
    driver.run(deploy, until=lambda d: d.state == Deploy.State.RUNNING)
    for _ in range(2):
        Deploy.objects.filter(pk=deploy.pk).update(
            lease_owner="run:crashy:1", lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        deploy_reconcile()

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    assert deploy.error.startswith("Gave up after 2 attempts")
