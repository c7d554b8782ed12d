"""Emergency rollback: who may start one and when, its plan (one batch, no verification
window), its run against the sandbox, its audit, notification and overview banner."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals.models import AuditEvent
from deployments.models import Deploy, DeployStep, Environment, Notification
from deployments.services.environments import environment_lock
from deployments.services.rollbacks import emergency_rollback_acknowledge, rollback_request
from hotdash.errors import Refused
from hotdash.integrations import fly_client
from tests.engine.conftest import fast_health, make_deploy

UPDATE = r"/apps/hot-dash/machines/[0-9a-f]+"


@pytest.fixture
def production(demo, sandbox):
    """Production with three machines, failing, and health timings of a few seconds. Its
    verification window is long: an emergency rollback that finishes well within it cannot
    have waited for it."""
    production = fast_health(demo.environments.get(name="production"))
    production.verification_window_seconds = 600
    production.machine_count = 3
    production.health = Environment.Health.FAILING
    production.save()
    with fly_client() as fly:
        existing = fly.list_machines(production.fly_app_name)[0]
        fly.create_machine(production.fly_app_name, existing.config, name="hot-dash-third")
    sandbox.advance(10)  # the third machine boots
    demo.notification_webhook_url = "https://hooks.example.test/hotdash"
    demo.notification_webhook_secret = "s3cret-signing-key"
    demo.save()
    return production


def emergency(environment, user, *, version="1.1.1", confirmation="hot-dash", reason="5xx"):
    return rollback_request(
        environment=environment,
        release=environment.app.releases.get(version=version),
        requested_by=user,
        reason=reason,
        confirmation=confirmation,
        emergency=True,
    )


def test_every_machine_goes_back_once_in_one_batch_without_a_verification_window(
    production, approver, driver, sandbox
):
    with fly_client() as fly:
        machines = sorted(m.id for m in fly.list_machines(production.fly_app_name))
    assert len(machines) == 3

    deploy = emergency(production, approver, reason="checkout returns 500")

    assert (deploy.kind, deploy.state, deploy.emergency, deploy.fast_path) == (
        Deploy.Kind.ROLLBACK,
        Deploy.State.QUEUED,
        True,
        True,
    )
    kinds = list(deploy.steps.values_list("kind", flat=True))
    assert kinds == ["verify_artifact", "github_deployment", "update_batch", "github_status"]
    batch = deploy.steps.get(kind=DeployStep.Kind.UPDATE_BATCH)
    assert sorted(batch.data["machines"]) == machines
    event = AuditEvent.objects.get(verb="rollback.emergency", target_id=str(deploy.pk))
    assert event.actor_name == "approver" and event.data["reason"] == "checkout returns 500"
    assert event.data["trouble"] == "hot-dash/production's health is failing."
    assert not AuditEvent.objects.filter(verb="rollback.requested").exists()
    notification = Notification.objects.get(event="rollback.emergency", deploy=deploy)
    assert "Emergency rollback: hot-dash v1.1.1 → production" in notification.payload["text"]
    assert "checkout returns 500" in notification.payload["text"]
    calls_before = len(sandbox.calls(service="fly"))

    driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    calls = [(r.method, r.path) for r in sandbox.calls(service="fly")[calls_before:]]
    updates = [
        i for i, (method, path) in enumerate(calls) if method == "POST" and "/lease" not in path
    ]
    assert Counter(calls[i][1].rsplit("/", 1)[1] for i in updates) == Counter(machines)
    # One batch: between the first and the last update only the next machines' leases and
    # reads before their updates, no health wait (which would read every updated machine).
    between = calls[updates[0] + 1 : updates[-1]]
    assert [method for method, path in between if "/lease" not in path] == [
        "GET",
        "POST",
        "GET",
    ]
    assert not AuditEvent.objects.filter(verb="deploy.verifying", target_id=str(deploy.pk))
    assert deploy.finished_at - deploy.started_at < timedelta(seconds=30)
    with fly_client() as fly:
        images = {m.config["image"] for m in fly.list_machines(production.fly_app_name)}
    assert images == {production.app.releases.get(version="1.1.1").image_ref}
    production.refresh_from_db()
    assert production.current_release.version == "1.1.1" and production.is_locked


def test_its_health_wait_is_the_grace_period_and_one_check_after_the_machines_start(
    production, approver, driver, sandbox
):
    sandbox.mark_image(production.app.releases.get(version="1.1.1").image_ref, healthy=False)
    deploy = emergency(production, approver)

    driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    # grace 1 s + one 2 s check once started (a normal batch: 1 s + 3 × 2 s from the update)
    assert deploy.error.startswith("Health checks failed after 3 s: ")
    batch = deploy.steps.get(kind=DeployStep.Kind.UPDATE_BATCH)
    started = (parse_datetime(batch.data["started_at"]) - deploy.started_at).total_seconds()
    assert started >= 3  # the sandbox's machines take 3 s to come back after an update
    assert (deploy.finished_at - deploy.started_at).total_seconds() < started + 3 + 2


def test_only_approvers_on_an_environment_in_trouble_to_the_last_healthy_release(
    demo, production, approver, requester
):
    staging = demo.environments.get(name="staging")
    refusals = [
        (production, requester, {}, "not_approver"),
        (staging, approver, {"version": "1.2.0"}, "not_in_trouble"),
        (production, approver, {"version": "1.1.0"}, "invalid_target"),
        (production, approver, {"confirmation": "yes"}, "confirmation_required"),
        (production, approver, {"reason": " "}, "reason_required"),
    ]
    for environment, user, changes, code in refusals:
        with pytest.raises(Refused) as refused:
            emergency(environment, user, **changes)
        assert refused.value.code == code, refused.value.message
    assert not Deploy.objects.filter(kind=Deploy.Kind.ROLLBACK).exists()
    with pytest.raises(Refused) as refused:
        emergency(production, approver, version="1.1.0")
    assert refused.value.message == (
        "An emergency rollback returns to the last healthy release in hot-dash/production, "
        "v1.1.1; roll back to v1.1.0 through a normal rollback."
    )


def test_a_deploy_that_failed_in_the_last_hour_puts_the_environment_in_trouble(
    demo, sandbox, approver, time_machine
):
    staging = demo.environments.get(name="staging")
    failed = staging.deploys.filter(state=Deploy.State.SUCCEEDED).first()
    Deploy.objects.filter(pk=failed.pk).update(
        state=Deploy.State.FAILED, finished_at=timezone.now(), error="health checks failed"
    )
    deploy = emergency(staging, approver, version="1.3.0-rc.1")
    assert deploy.emergency and deploy.state == Deploy.State.QUEUED
    Deploy.objects.filter(pk=deploy.pk).update(state=Deploy.State.CANCELLED)

    time_machine.move_to(timezone.now() + timedelta(minutes=61))
    with pytest.raises(Refused) as refused:
        emergency(staging, approver, version="1.3.0-rc.1")
    assert refused.value.code == "not_in_trouble"


def test_an_emergency_rollback_passes_the_lock(production, approver, admin_user, driver):
    environment_lock(environment=production, actor=admin_user, reason="incident")
    deploy = emergency(production, approver)
    driver.run(deploy)
    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error


def test_the_overview_shows_it_until_an_approver_acknowledges_it(
    client, production, approver, requester
):
    deploy = emergency(production, approver, reason="checkout returns 500")
    overview = reverse("overview")
    acknowledge = reverse("deployments:emergency-acknowledge", args=[deploy.pk])
    client.force_login(requester)
    html = client.get(overview).content.decode()
    assert f'id="emergency-{deploy.pk}"' in html and "checkout returns 500" in html
    assert acknowledge not in html  # a deployer sees it but may not acknowledge it
    assert client.post(acknowledge).status_code == 403

    client.force_login(approver)
    assert acknowledge in client.get(overview).content.decode()
    response = client.post(acknowledge)

    assert response.status_code == 302 and response["Location"] == overview
    assert f'id="emergency-{deploy.pk}"' not in client.get(overview).content.decode()
    event = AuditEvent.objects.get(verb="rollback.emergency_acknowledged")
    assert event.actor_name == "approver" and event.target_id == str(deploy.pk)
    with pytest.raises(Refused) as refused:
        emergency_rollback_acknowledge(deploy=deploy, actor=approver)
    assert refused.value.code == "already_acknowledged"


def test_the_overview_banner_reads_no_more_for_a_rollback_than_without_one(
    client, production, approver, requester, django_assert_num_queries
):
    client.force_login(requester)
    overview = reverse("overview")
    with CaptureQueriesContext(connection) as without:
        client.get(overview)
    deploy = emergency(production, approver)
    with django_assert_num_queries(len(without.captured_queries)):
        html = client.get(overview).content.decode()
    assert f'id="emergency-{deploy.pk}"' in html and "by approver" in html


def test_pages_offer_it_to_approvers_in_trouble_and_say_why_not_otherwise(
    client, demo, production, approver, requester
):
    staging = demo.environments.get(name="staging")
    client.force_login(approver)
    page = client.get(reverse("deployments:environment-detail", args=[production.pk]))
    assert 'id="emergency-rollback-link"' in page.content.decode()
    page = client.get(reverse("deployments:environment-detail", args=[staging.pk]))
    html = page.content.decode()
    assert 'id="emergency-rollback-link"' not in html
    assert "Emergency rollback not available: hot-dash/staging is not in trouble" in html
    client.force_login(requester)
    page = client.get(reverse("deployments:environment-detail", args=[production.pk]))
    assert "emergency-rollback" not in page.content.decode()
    form = client.get(reverse("deployments:rollback-form", args=[production.pk]))
    assert "Not available: Only approvers may start an emergency rollback." in (
        form.content.decode()
    )


def test_the_rollback_form_starts_one_with_the_typed_app_name(client, production, approver):
    url = reverse("deployments:rollback-form", args=[production.pk])
    target = production.app.releases.get(version="1.1.1")
    client.force_login(approver)
    html = client.get(url).content.decode()
    assert "Emergency rollback to v1.1.1" in html and f'name="release" value="{target.pk}"' in html
    posted = {"release": target.pk, "reason": "5xx", "emergency": "1", "confirmation": "nope"}

    response = client.post(url, posted)

    assert response.status_code == 422
    assert "Type the app name (hot-dash) to start an emergency rollback." in (
        response.content.decode()
    )
    response = client.post(url, {**posted, "confirmation": "hot-dash"})
    deploy = Deploy.objects.get(kind=Deploy.Kind.ROLLBACK)
    assert response["Location"] == reverse("deployments:deploy-detail", args=[deploy.pk])
    assert deploy.emergency and deploy.state == Deploy.State.QUEUED


def test_it_pre_empts_a_deploy_running_there_after_that_deploys_batch(
    production, approver, requester, driver, sandbox, client
):
    started = make_deploy(
        production, production.app.releases.get(version="1.3.0"), requested_by=requester
    )
    driver.run(started, until=lambda d: len(sandbox.calls("POST", UPDATE, service="fly")) == 1)
    client.force_login(approver)
    form = client.get(reverse("deployments:rollback-form", args=[production.pk])).content.decode()
    assert 'id="emergency-pre-empts"' in form
    assert f"#{started.pk}</a> (v1.3.0) is running here: it stops after its current batch" in form

    rollback = emergency(production, approver, reason="1.3.0 breaks checkout")

    started.refresh_from_db()
    assert started.state == Deploy.State.RUNNING and started.superseded_by == rollback
    event = AuditEvent.objects.get(verb="rollback.emergency", target_id=str(rollback.pk))
    assert event.data["pre_empted"] == started.pk
    started = driver.run(started)
    assert started.state == Deploy.State.SUPERSEDED
    assert len(sandbox.calls("POST", UPDATE, service="fly")) == 1  # it stopped after its batch
    driver.run(rollback)
    assert rollback.state == Deploy.State.SUCCEEDED, rollback.error
    with fly_client() as fly:
        images = {m.config["image"] for m in fly.list_machines(production.fly_app_name)}
    assert images == {production.app.releases.get(version="1.1.1").image_ref}


def test_a_normal_rollback_waits_behind_a_running_deploy(
    production, approver, requester, driver, sandbox
):
    started = make_deploy(
        production, production.app.releases.get(version="1.3.0"), requested_by=requester
    )
    driver.run(started, until=lambda d: len(sandbox.calls("POST", UPDATE, service="fly")) == 1)

    rollback_request(
        environment=production,
        release=production.app.releases.get(version="1.1.1"),
        requested_by=approver,
        reason="not an emergency",
        confirmation="hot-dash",
    )

    started.refresh_from_db()
    assert started.superseded_by is None
