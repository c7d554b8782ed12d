"""Production takes a release only after the same image ran healthy on staging for its rule's
minutes (the demo: 10), checked at the request and again at the claim; admins may override."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import AuditEvent
from approvals.services import approval_decide
from deployments.models import Deploy
from deployments.services.requests import deploy_request
from hotdash.errors import Refused
from tests.fixtures.promotion import rehearse

RULE = "production takes a release only after it ran healthy on staging for 10 minutes"


@pytest.fixture
def release_110(demo):
    """A release that never ran on the demo's staging."""
    return demo.releases.get(version="1.1.0")


@pytest.fixture
def now(sandbox, time_machine):
    moment = timezone.now().replace(microsecond=0)
    time_machine.move_to(moment, tick=False)
    return moment


def request(environment, release, user, **options):
    return deploy_request(
        environment=environment, release=release, requested_by=user, reason="promote", **options
    )


def refusal(environment, release, user) -> Refused:
    with pytest.raises(Refused) as caught:
        request(environment, release, user)
    assert caught.value.code == "promotion_required"
    return caught.value


def test_a_release_that_never_ran_on_staging_is_refused_naming_what_is_missing(
    production, release_110, requester, now
):
    refused = refusal(production, release_110, requester)

    assert refused.message == f"{RULE}: v1.1.0 never ran on staging; deploy it to staging first."
    assert refused.details["previous_environment"] == "staging"
    assert refused.details["rehearsal_deploy"] is None
    event = AuditEvent.objects.get(verb="deploy.refused")
    assert event.data["code"] == "promotion_required"
    assert (
        not Deploy.objects.filter(environment=production)
        .exclude(state=Deploy.State.SUCCEEDED)
        .exists()
    )


def test_the_rule_is_met_at_exactly_ten_healthy_minutes_and_not_a_second_before(
    production, release_110, requester, now, time_machine
):
    rehearse(release_110, finished_at=now)
    time_machine.move_to(now + timedelta(minutes=10) - timedelta(seconds=1), tick=False)

    refused = refusal(production, release_110, requester)

    assert refused.message == (
        f"{RULE}: v1.1.0 has run healthy there for 9 of 10 minutes; wait 1 more."
    )
    time_machine.move_to(now + timedelta(minutes=10), tick=False)
    deploy = request(production, release_110, requester)
    assert deploy.state == Deploy.State.AWAITING_APPROVAL


def test_a_failure_or_a_rollback_on_staging_since_the_rehearsal_undoes_it(
    demo, production, release_110, requester, now
):
    rehearse(release_110, finished_at=now - timedelta(hours=2))
    failed = rehearse(
        demo.releases.get(version="1.3.0"),
        finished_at=now - timedelta(hours=1),
        state=Deploy.State.FAILED,
    )

    refused = refusal(production, release_110, requester)

    assert refused.message == (
        f"{RULE}: v1.1.0 succeeded on staging 120 min ago, then deploy #{failed.pk} failed "
        "there; deploy v1.1.0 to staging again."
    )
    assert refused.details["broken_by_deploy"] == failed.pk
    again = rehearse(release_110, finished_at=now - timedelta(minutes=30))
    rollback = rehearse(
        demo.releases.get(version="1.2.0"),
        finished_at=now - timedelta(minutes=5),
        kind=Deploy.Kind.ROLLBACK,
    )
    assert f"then deploy #{rollback.pk} was rolled back there" in (
        refusal(production, release_110, requester).message
    )
    assert again.pk < rollback.pk


def test_a_later_successful_deploy_of_another_release_keeps_the_rehearsal(
    demo, production, release_110, requester, now
):
    rehearse(release_110, finished_at=now - timedelta(hours=2))
    rehearse(demo.releases.get(version="1.2.0"), finished_at=now - timedelta(hours=1))

    assert request(production, release_110, requester).state == Deploy.State.AWAITING_APPROVAL


def test_the_same_tag_built_into_another_image_does_not_count_as_rehearsed(
    production, release_110, requester, now
):
    rehearse(release_110, finished_at=now - timedelta(hours=1))
    release_110.image_digest = "sha256:" + "e" * 64
    release_110.save(update_fields=["image_digest"])

    refused = refusal(production, release_110, requester)

    assert refused.message.startswith(f"{RULE}: v1.1.0 ran on staging as another image, not")


def test_staging_has_no_rule(demo, release_110, approver, now):
    staging = demo.environments.get(name="staging")
    assert request(staging, release_110, approver).state in (
        Deploy.State.QUEUED,
        Deploy.State.AWAITING_APPROVAL,
    )


def test_an_admin_overrides_the_rule_with_a_reason_audited_and_shown_on_the_deploy(
    production, release_110, admin_user, now
):
    deploy = request(
        production,
        release_110,
        admin_user,
        overrides=["promotion"],
        override_reason="hotfix rehearsed elsewhere",
    )

    assert deploy.overrides == ["promotion"]
    assert deploy.override_reason == "hotfix rehearsed elsewhere"
    event = AuditEvent.objects.get(verb="deploy.override", target_id=str(deploy.pk))
    assert event.data["overrides"] == ["promotion"]
    assert event.data["reason"] == "hotfix rehearsed elsewhere"


def test_a_rehearsed_release_needs_no_override_so_none_is_recorded(
    production, release_130, admin_user, now
):
    deploy = request(
        production, release_130, admin_user, overrides=["promotion"], override_reason="just in case"
    )

    assert deploy.overrides == []


def test_a_deploy_approved_before_staging_went_bad_waits_at_the_claim(
    demo, production, release_130, requester, approver, sandbox, driver
):
    deploy = request(production, release_130, requester)
    approval_decide(request=deploy.approval_request, user=approver, verdict="approve")
    failed = rehearse(
        demo.releases.get(version="1.2.0"), finished_at=timezone.now(), state=Deploy.State.FAILED
    )

    driver.run_once(deploy)

    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.QUEUED
    assert deploy.logs.filter(message__contains=f"then deploy #{failed.pk} failed").exists()
    assert not [r for r in sandbox.calls(service="fly") if r.method != "GET"]


def test_the_drawer_and_the_request_form_show_the_rule_with_its_state(
    client, production, release_110, release_130, requester, approver, now
):
    pending = request(production, release_130, requester)
    client.force_login(approver)
    drawer = client.get(reverse("approvals:deploy-drawer", args=[pending.pk])).content.decode()
    form = client.get(
        reverse("deployments:deploy-new"),
        {"environment": production.pk, "release": release_110.pk},
    ).content.decode()

    assert 'data-met="true"' in drawer
    assert "v1.3.0 succeeded on staging " in drawer and " ago, healthy since." in drawer
    assert 'data-met="false"' in form and "v1.1.0 never ran on staging." in form
    assert "Promotion from staging (10 min healthy):" in form


def test_a_rehearsal_older_than_a_day_is_said_in_days():
    from deployments.selectors.promotion import _elapsed

    assert [_elapsed(m) for m in (42, 1439, 1440, 83392)] == [
        "42 min",
        "1439 min",
        "1 day",
        "57 days",
    ]
