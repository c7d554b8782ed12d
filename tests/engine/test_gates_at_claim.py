"""A lock or freeze window that begins after a deploy was queued holds it at the claim: it
waits, saying why, until the gate clears. Automatic rollbacks and admin overrides go through."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import AuditEvent
from approvals.services import approval_decide
from deployments.models import Deploy
from deployments.services.environments import (
    environment_lock,
    environment_unlock,
    freeze_window_add,
)
from deployments.services.requests import deploy_request
from tests.engine.conftest import make_deploy, rollback_to_111

UPDATE = r"/apps/hot-dash/machines/[0-9a-f]+"


def fly_writes(sandbox) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.calls(service="fly") if r.method != "GET"]


def waiting(deploy: Deploy) -> list[str]:
    return list(
        deploy.logs.filter(message__startswith="Waiting")
        .order_by("id")
        .values_list("message", flat=True)
    )


def started(deploy: Deploy) -> bool:
    return AuditEvent.objects.filter(
        verb="deploy.started", target_type="deploy", target_id=str(deploy.pk)
    ).exists()


def test_a_deploy_queued_before_its_environment_was_locked_waits_until_it_is_unlocked(
    production, release_130, requester, admin_user, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    locked = environment_lock(environment=production, actor=admin_user, reason="incident 42")

    for _ in range(3):  # re-checked at each poll, said once
        assert driver.run_once(deploy) is not None
        driver.tick(1)

    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.QUEUED
    assert waiting(deploy) == [
        f"Waiting: hot-dash/production is locked by root since "
        f"{locked.locked_at:%Y-%m-%d %H:%M} UTC: incident 42"
    ]
    assert fly_writes(sandbox) == []
    assert not started(deploy)

    environment_unlock(environment=production, actor=admin_user, reason="resolved")
    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert len(sandbox.calls("POST", UPDATE, service="fly")) == 2


def test_a_freeze_window_that_began_after_the_queue_holds_the_deploy_until_it_ends(
    production, release_130, requester, admin_user, sandbox, driver
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    now = timezone.now()
    window = freeze_window_add(
        environment=production,
        actor=admin_user,
        starts_at=now,
        ends_at=now + timedelta(seconds=30),
        reason="launch day",
    )

    driver.run_once(deploy)

    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.QUEUED
    assert waiting(deploy) == [
        f"Waiting: hot-dash/production is in a freeze window until "
        f"{window.ends_at:%Y-%m-%d %H:%M} UTC: launch day"
    ]
    assert fly_writes(sandbox) == []

    deploy = driver.run(deploy)  # polls every second until the window is over

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert window.ends_at <= deploy.started_at < window.ends_at + timedelta(seconds=2)
    assert len(waiting(deploy)) == 1


def test_an_automatic_rollback_runs_ahead_of_held_deploys_and_the_bad_release_never_ships(
    production, release_130, requester, admin_user, sandbox, driver
):
    sandbox.mark_image(release_130.image_ref, healthy=False)
    failing = make_deploy(production, release_130, requested_by=requester)
    held = make_deploy(production, release_130, requested_by=requester)
    failing = driver.run(failing)
    rollback = Deploy.objects.get(rollback_of=failing)
    production.refresh_from_db()
    release_130.refresh_from_db()
    assert production.is_locked and release_130.is_bad
    writes = len(fly_writes(sandbox))

    driver.run_once(held)  # its release failed its health checks while it was queued

    held.refresh_from_db()
    assert held.state == Deploy.State.FAILED and not started(held)
    assert held.error == (
        f"Approval no longer valid: v1.3.0 is marked bad: {release_130.bad_reason}."
    )
    assert len(fly_writes(sandbox)) == writes

    rollback = driver.run(rollback)  # queued after the held deploy, yet not behind it

    assert rollback.state == Deploy.State.SUCCEEDED, rollback.error
    updated = [r.path for r in sandbox.calls("POST", UPDATE, service="fly")]
    assert len(updated) == 2 and len(set(updated)) == 1  # one machine, forward and back only
    environment_unlock(environment=production, actor=admin_user, reason="understood")
    assert driver.run_once(held) is None  # unlocked: still nothing to ship
    assert len(sandbox.calls("POST", UPDATE, service="fly")) == 2


def test_an_admin_lock_override_starts_on_the_locked_environment_but_not_in_a_freeze_window(
    production, release_130, admin_user, approver, sandbox, driver
):
    environment_lock(environment=production, actor=admin_user, reason="incident 42")
    deploy = deploy_request(
        environment=production,
        release=release_130,
        requested_by=admin_user,
        reason="the fix for incident 42",
        overrides=["lock"],
        override_reason="this is the fix",
    )
    approval_decide(request=deploy.approval_request, user=approver, verdict="approve")
    deploy.refresh_from_db()
    assert (deploy.state, deploy.overrides) == (Deploy.State.QUEUED, ["lock"])
    now = timezone.now()
    window = freeze_window_add(
        environment=production,
        actor=admin_user,
        starts_at=now,
        ends_at=now + timedelta(seconds=10),
        reason="launch day",
    )

    driver.run_once(deploy)  # the override covers the lock, not a window begun since

    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.QUEUED
    assert waiting(deploy) == [
        f"Waiting: hot-dash/production is in a freeze window until "
        f"{window.ends_at:%Y-%m-%d %H:%M} UTC: launch day"
    ]

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    production.refresh_from_db()
    assert production.is_locked  # still locked: the override let this one deploy through
    assert production.current_release == release_130


def hold_events(rollback: Deploy) -> list[tuple[str, str, str]]:
    """The audit events of the rollback's start, in chain order: (verb, target, actor)."""
    started = AuditEvent.objects.get(
        verb="deploy.started", target_type="deploy", target_id=str(rollback.pk)
    )
    after = AuditEvent.objects.filter(id__gte=started.id).order_by("id")[:3]
    return [(e.verb, e.target_repr, e.actor_name) for e in after]


def test_an_approved_rollback_locks_and_marks_bad_as_it_starts_and_not_before(
    demo, production, requester, approver, sandbox, driver
):
    bad = demo.releases.get(version="1.2.0")
    rollback = rollback_to_111(production, requester)
    assert rollback.state == Deploy.State.AWAITING_APPROVAL
    approval_decide(request=rollback.approval_request, user=approver, verdict="approve")
    rollback.refresh_from_db()
    production.refresh_from_db()
    bad.refresh_from_db()
    assert rollback.state == Deploy.State.QUEUED  # approved, not started: nothing yet
    assert not production.is_locked and not bad.is_bad

    driver.run_once(rollback)  # the claim: queued -> running, lock and mark in one commit

    rollback.refresh_from_db()
    production.refresh_from_db()
    bad.refresh_from_db()
    assert rollback.state == Deploy.State.RUNNING
    assert production.is_locked and production.locked_by is None
    assert production.lock_reason.startswith(
        f"Rolled back from v1.2.0 to v1.1.1 by requester (rollback #{rollback.pk}): "
        "5xx spike after 1.2.0."
    )
    assert bad.is_bad and bad.bad_marked_by == requester
    assert bad.bad_reason == (
        f"Rolled back in production by requester (rollback #{rollback.pk}): 5xx spike after 1.2.0"
    )
    assert hold_events(rollback) == [
        ("deploy.started", f"Deploy #{rollback.pk}", "worker"),
        ("release.marked_bad", "hot-dash v1.2.0", "requester"),
        ("environment.locked", "hot-dash/production", "system"),
    ]

    rollback = driver.run(rollback)

    assert rollback.state == Deploy.State.SUCCEEDED, rollback.error
    assert waiting(rollback) == []
    production.refresh_from_db()
    assert production.current_release.version == "1.1.1" and production.is_locked


def test_the_start_the_bad_mark_and_the_lock_commit_together_or_not_at_all(
    demo, production, approver, sandbox, driver, monkeypatch
):
    rollback = rollback_to_111(production, approver)

    def lock_fails(**_):
        raise RuntimeError("lost the database mid-claim")

    monkeypatch.setattr("deployments.services.gates.environment_lock", lock_fails)
    with pytest.raises(RuntimeError):
        driver.run_once(rollback)  # marked bad, then the lock fails: the claim rolls back

    rollback.refresh_from_db()
    assert (rollback.state, rollback.started_at) == (Deploy.State.QUEUED, None)
    assert not started(rollback) and not demo.releases.get(version="1.2.0").is_bad
    assert not AuditEvent.objects.filter(verb="release.marked_bad").exists()
    monkeypatch.undo()

    rollback = driver.run(rollback)  # the same message, claimed again

    assert rollback.state == Deploy.State.SUCCEEDED, rollback.error
    production.refresh_from_db()
    assert production.is_locked and demo.releases.get(version="1.2.0").is_bad


def test_a_rollback_waiting_for_its_turn_locks_nothing_then_runs_ahead_of_an_older_deploy(
    demo, production, release_130, requester, approver, sandbox, driver
):
    running = make_deploy(production, release_130, requested_by=requester)
    running = driver.run(running, until=lambda d: d.state == Deploy.State.RUNNING)
    older = make_deploy(production, release_130, requested_by=requester)
    driver.tick(1)
    rollback = rollback_to_111(production, approver)  # the fast path: queued at once
    assert older.queued_at < rollback.queued_at

    driver.run_once(rollback)  # the environment is busy: not started, so nothing applied

    rollback.refresh_from_db()
    production.refresh_from_db()
    assert rollback.state == Deploy.State.QUEUED
    assert waiting(rollback) == [
        f"Waiting: environment production is busy with deploy #{running.pk}."
    ]
    assert not production.is_locked and not demo.releases.get(version="1.2.0").is_bad

    running = driver.run(running)
    assert running.state == Deploy.State.SUCCEEDED, running.error
    driver.run_once(older)  # a person's rollback goes first
    older.refresh_from_db()
    assert (
        waiting(older)[-1] == f"Waiting: environment production is busy with deploy #{rollback.pk}."
    )

    rollback = driver.run(rollback)

    assert rollback.state == Deploy.State.SUCCEEDED, rollback.error
    production.refresh_from_db()
    assert production.current_release.version == "1.1.1" and production.is_locked
    driver.run_once(older)  # then the lock it applied as it started holds the older deploy
    older.refresh_from_db()
    assert older.state == Deploy.State.QUEUED and not started(older)
    assert waiting(older)[-1].startswith("Waiting: hot-dash/production is locked by system")
    assert len(sandbox.calls("POST", UPDATE, service="fly")) == 4  # 1.3.0 and back, only


def test_a_persons_rollback_waits_for_a_lock_it_did_not_set_like_any_deploy(
    production, approver, admin_user, sandbox, driver
):
    rollback = rollback_to_111(production, approver)
    locked = environment_lock(environment=production, actor=admin_user, reason="incident 42")

    driver.run_once(rollback)

    rollback.refresh_from_db()
    assert rollback.state == Deploy.State.QUEUED and not started(rollback)
    assert waiting(rollback) == [
        f"Waiting: hot-dash/production is locked by root since "
        f"{locked.locked_at:%Y-%m-%d %H:%M} UTC: incident 42"
    ]
    assert fly_writes(sandbox) == []

    environment_unlock(environment=production, actor=admin_user, reason="look, then roll back")
    rollback = driver.run(rollback)

    assert rollback.state == Deploy.State.SUCCEEDED, rollback.error
    production.refresh_from_db()
    assert production.is_locked and production.lock_reason.startswith("Rolled back from v1.2.0")
