"""What was approved is checked again when a worker claims the deploy: an approver who
was deactivated or demoted, a requester who may no longer approve their own deploy, a release
marked bad while the deploy waited; any of them ends the deploy failed before Fly or GitHub
is written to. A plain deploy that a newer live release overtook ends superseded."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent
from approvals.services import approval_decide
from deployments.models import Deploy, Notification
from deployments.services.deploys import deploy_queue
from deployments.services.environments import environment_lock
from deployments.services.releases import release_mark_bad
from deployments.services.requests import deploy_request
from tests.engine.conftest import make_deploy

UPDATE = r"/apps/hot-dash/machines/[0-9a-f]+"


def writes(sandbox) -> list[str]:
    """Every Fly or GitHub request that could change something."""
    return [f"{r.service} {r.method} {r.path}" for r in sandbox.calls() if r.method != "GET"]


def events(deploy: Deploy, verb: str) -> list[AuditEvent]:
    about = AuditEvent.objects.filter(target_type="deploy", target_id=str(deploy.pk))
    return list(about.filter(verb=verb))


@pytest.fixture
def webhook(demo):
    """A notification webhook, so each notification is stored (delivery is not run here)."""
    demo.notification_webhook_url = "http://127.0.0.1:9/hook"
    demo.notification_webhook_secret = "claim-hook-secret"
    demo.save()


def approved(production, release, *, requested_by, approver) -> Deploy:
    deploy = deploy_request(
        environment=production, release=release, requested_by=requested_by, reason="ship it"
    )
    approval_decide(request=deploy.approval_request, user=approver, verdict="approve")
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.QUEUED
    return deploy


def assert_ended_invalid(deploy: Deploy, sandbox, problem: str) -> None:
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.FAILED
    assert deploy.error == f"Approval no longer valid: {problem}."
    assert writes(sandbox) == []
    [event] = events(deploy, "deploy.approval_invalid")
    assert (event.actor_name, event.data) == ("worker", {"problems": [problem]})
    assert not events(deploy, "deploy.started")
    [notification] = Notification.objects.filter(deploy=deploy, event="deploy.failed")
    assert deploy.error in notification.payload["text"]
    assert deploy.logs.order_by("-id").first().message == f"{deploy.error} Nothing was changed."


@pytest.mark.parametrize("change", ["deactivated", "demoted"])
def test_an_approver_who_lost_the_role_before_the_claim_voids_the_approval(
    production, release_130, requester, approver, sandbox, driver, webhook, change
):
    deploy = approved(production, release_130, requested_by=requester, approver=approver)
    if change == "deactivated":
        approver.is_active = False
        approver.save(update_fields=["is_active"])
    else:
        approver.groups.clear()

    assert driver.run_once(deploy) is None

    problem = "approver is no longer " + ("active" if change == "deactivated" else "an approver")
    assert_ended_invalid(deploy, sandbox, problem)


def test_a_self_approval_no_longer_allowed_at_the_claim_voids_the_approval(
    production, release_130, admin_user, sandbox, driver, webhook
):
    production.allow_self_approval = True
    production.save(update_fields=["allow_self_approval"])
    deploy = approved(production, release_130, requested_by=admin_user, approver=admin_user)
    production.allow_self_approval = False
    production.save(update_fields=["allow_self_approval"])

    assert driver.run_once(deploy) is None

    assert_ended_invalid(deploy, sandbox, "root requested this deploy and may not approve it")


def test_a_release_marked_bad_while_its_deploy_waits_behind_a_lock_never_ships(
    production, release_130, requester, approver, admin_user, sandbox, driver, webhook
):
    deploy = approved(production, release_130, requested_by=requester, approver=approver)
    environment_lock(environment=production, actor=admin_user, reason="incident 42")
    assert driver.run_once(deploy) is not None  # held by the lock
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.QUEUED

    release_mark_bad(release=release_130, actor=admin_user, reason="corrupts sessions")
    driver.tick(1)
    assert driver.run_once(deploy) is None

    assert_ended_invalid(deploy, sandbox, "v1.3.0 is marked bad: corrupts sessions")


def test_an_approval_that_still_holds_goes_ahead(
    production, release_130, requester, approver, second_approver, sandbox, driver
):
    deploy = approved(production, release_130, requested_by=requester, approver=approver)
    second_approver.groups.clear()  # someone else's role changes nothing

    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert not events(deploy, "deploy.approval_invalid")


def test_a_plain_deploy_overtaken_by_a_newer_live_release_ends_superseded_untouched(
    demo, production, release_130, requester, sandbox, driver
):
    candidate = demo.releases.get(version="1.3.0-rc.1")
    older = make_deploy(production, candidate, requested_by=requester, queue=False)
    newer = driver.run(make_deploy(production, release_130, requested_by=requester))
    assert newer.state == Deploy.State.SUCCEEDED, newer.error
    before = writes(sandbox)
    deploy_queue(deploy=older, actor=requester)  # approved only now, 1.3.0 already live

    assert driver.run_once(older) is None

    older.refresh_from_db()
    assert (older.state, older.superseded_by) == (Deploy.State.SUPERSEDED, newer)
    assert older.error.startswith(
        f"Superseded by deploy #{newer.pk}: v1.3.0 went live after this deploy of "
        "v1.3.0-rc.1 was requested, so it would be a downgrade."
    )
    assert writes(sandbox) == before
    [event] = events(older, "deploy.superseded")
    assert event.data == {
        "by": newer.pk,
        "from": "queued",
        "live": "v1.3.0",
        "release": "v1.3.0-rc.1",
    }
    production.refresh_from_db()
    assert production.current_release == release_130


def test_a_downgrade_requested_while_the_newer_release_is_live_goes_ahead(
    demo, production, requester, sandbox, driver
):
    target = demo.releases.get(version="1.1.1")
    assert production.current_release.version == "1.2.0"

    deploy = driver.run(make_deploy(production, target, requested_by=requester))

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    production.refresh_from_db()
    assert production.current_release == target
    assert len(sandbox.calls("POST", UPDATE, service="fly")) == 2
