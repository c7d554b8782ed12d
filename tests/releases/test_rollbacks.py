"""Rollbacks: policy (fast path or approval), the sticky bad mark and lock (applied as the
rollback starts), proof of health."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent
from deployments.models import Deploy, Environment, Release
from deployments.services.environments import environment_unlock
from deployments.services.releases import release_clear_bad
from deployments.services.requests import deploy_request
from deployments.services.rollbacks import rollback_request
from hotdash.errors import Refused
from tests.engine.conftest import fast_health


@pytest.fixture
def production(demo, sandbox):
    return fast_health(demo.environments.get(name="production"))


def release(demo, version) -> Release:
    return demo.releases.get(version=version)


def test_fast_path_rollback_queues_and_marks_bad_and_locks_as_it_starts(
    demo, production, approver, driver
):
    deploy = rollback_request(
        environment=production,
        release=release(demo, "1.1.1"),
        requested_by=approver,
        reason="5xx spike after 1.2.0",
        confirmation="hot-dash",
    )
    assert (deploy.kind, deploy.state, deploy.fast_path) == (
        Deploy.Kind.ROLLBACK,
        Deploy.State.QUEUED,
        True,
    )
    assert deploy.previous_release.version == "1.2.0"
    assert deploy.rollback_of.release.version == "1.2.0"
    event = AuditEvent.objects.get(verb="rollback.requested")
    assert event.data["fast_path"] is True and event.data["from"] == "v1.2.0"
    assert event.data["on_start"] == "Will lock production and mark v1.2.0 bad when it starts."
    assert event.actor_name == "approver" and event.environment_name == "production"
    production.refresh_from_db()
    assert not release(demo, "1.2.0").is_bad and not production.is_locked  # not started yet

    driver.run_once(deploy)

    bad = release(demo, "1.2.0")
    assert bad.is_bad and bad.bad_marked_by == approver
    assert "5xx spike after 1.2.0" in bad.bad_reason and f"#{deploy.pk}" in bad.bad_reason
    production.refresh_from_db()
    assert production.is_locked and production.locked_by is None
    assert production.lock_reason.startswith("Rolled back from v1.2.0 to v1.1.1 by approver")


def test_no_fast_path_for_a_target_that_was_never_live(demo, production, approver):
    deploy = rollback_request(
        environment=production,
        release=release(demo, "1.3.0"),
        requested_by=approver,
        reason="try the newer one",
        confirmation="hot-dash",
    )
    assert deploy.state == Deploy.State.AWAITING_APPROVAL and not deploy.fast_path
    event = AuditEvent.objects.get(verb="rollback.requested")
    assert event.data["policy"] == (
        "No fast path: v1.3.0 was never live and healthy in production; the rollback needs "
        "1 approval(s)."
    )


def test_deployers_and_switched_off_environments_get_the_normal_approval(
    demo, production, requester
):
    deploy = rollback_request(
        environment=production,
        release=release(demo, "1.1.1"),
        requested_by=requester,
        reason="incident",
        confirmation="hot-dash",
    )
    assert deploy.state == Deploy.State.AWAITING_APPROVAL and not deploy.fast_path


def test_production_needs_the_typed_app_name_and_a_reason(demo, production, approver, viewer):
    cases = [
        (approver, "incident", "hot-dahs", "confirmation_required"),
        (approver, "  ", "hot-dash", "reason_required"),
        (viewer, "incident", "hot-dash", "forbidden"),
    ]
    for user, reason, confirmation, code in cases:
        with pytest.raises(Refused) as info:
            rollback_request(
                environment=production,
                release=release(demo, "1.1.1"),
                requested_by=user,
                reason=reason,
                confirmation=confirmation,
            )
        assert info.value.code == code
    assert not Deploy.objects.filter(kind=Deploy.Kind.ROLLBACK).exists()
    assert not release(demo, "1.2.0").is_bad


def test_a_refused_rollback_changes_nothing(demo, production, approver, admin_user):
    from deployments.services.environments import environment_lock

    environment_lock(environment=production, actor=admin_user, reason="maintenance")
    with pytest.raises(Refused) as info:
        rollback_request(
            environment=production,
            release=release(demo, "1.1.1"),
            requested_by=approver,
            reason="incident",
            confirmation="hot-dash",
        )
    assert info.value.code == "environment_locked"
    assert not release(demo, "1.2.0").is_bad
    assert not AuditEvent.objects.filter(verb="rollback.requested").exists()
    assert AuditEvent.objects.filter(verb="deploy.refused").count() == 1  # kept, not rolled back


def test_the_bad_mark_blocks_redeploy_until_cleared(demo, production, approver, admin_user, driver):
    rollback = rollback_request(
        environment=production,
        release=release(demo, "1.1.1"),
        requested_by=approver,
        reason="incident",
        confirmation="hot-dash",
    )
    assert driver.run(rollback).state == Deploy.State.SUCCEEDED
    environment_unlock(environment=production, actor=admin_user, reason="incident understood")
    bad = release(demo, "1.2.0")
    with pytest.raises(Refused) as info:
        deploy_request(environment=production, release=bad, requested_by=approver, reason="retry")
    assert info.value.code == "release_bad"
    assert "is marked bad: Rolled back in production by approver" in info.value.message
    with pytest.raises(ValueError, match="reason is required"):
        release_clear_bad(release=bad, actor=approver, reason=" ")
    bad = release_clear_bad(release=bad, actor=approver, reason="fixed by config change")
    deploy = deploy_request(
        environment=production, release=bad, requested_by=approver, reason="retry"
    )
    assert deploy.state == Deploy.State.AWAITING_APPROVAL
    cleared = AuditEvent.objects.get(verb="release.bad_mark_cleared")
    assert cleared.data["reason"] == "fixed by config change"


@pytest.fixture
def staging(demo, sandbox):
    return fast_health(demo.environments.get(name="staging"))


def test_rollback_health_is_verified_and_recorded(demo, staging, approver, driver, sandbox):
    deploy = rollback_request(
        environment=staging, release=release(demo, "1.2.0"), requested_by=approver, reason="rc bad"
    )
    deploy = driver.run(deploy)
    assert deploy.state == Deploy.State.SUCCEEDED and deploy.health_verified is True
    assert deploy.health_summary
    staging.refresh_from_db()
    assert staging.current_release.version == "1.2.0" and staging.is_locked


def test_a_failed_rollback_is_recorded_loudly(
    demo, staging, approver, driver, sandbox, client, viewer
):
    target = release(demo, "1.2.0")
    sandbox.mark_image(target.image_ref, healthy=False)
    deploy = rollback_request(
        environment=staging, release=target, requested_by=approver, reason="rc bad"
    )
    deploy = driver.run(deploy)
    assert deploy.state == Deploy.State.FAILED and deploy.health_verified is False
    client.force_login(viewer)
    html = client.get("/rollbacks/").content.decode()
    assert 'id="rollback-failures"' in html and f"#{deploy.pk}" in html
    assert Environment.objects.get(pk=staging.pk).is_locked
