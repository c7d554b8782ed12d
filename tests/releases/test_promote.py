"""Promotion through the environments as people see it: the Promote button (deploy page and
release page), the rehearsal evidence a request keeps, the pipeline on the releases page, an
admin's override of the rule notified, and the demo's two releases on either side of the rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.models import AuditEvent
from deployments.models import OVERRIDE_LABELS, Deploy, Notification, Release
from deployments.selectors.promotion import promotion_check
from deployments.services.requests import deploy_request
from tests.fixtures.promotion import rehearse

NEVER_ON_STAGING = (
    "production takes a release only after it ran healthy on staging for 10 minutes: v1.3.1 "
    "never ran on staging; deploy it to staging first."
)


@pytest.fixture
def now(time_machine):
    moment = timezone.now().replace(microsecond=0)
    time_machine.move_to(moment, tick=False)
    return moment


@pytest.fixture
def production(demo):
    return demo.environments.get(name="production")


@pytest.fixture
def staging(demo):
    return demo.environments.get(name="staging")


@pytest.fixture
def v130(demo) -> Release:
    return demo.releases.get(version="1.3.0")


@pytest.fixture
def v131(demo) -> Release:
    return demo.releases.get(version="1.3.1")


def staging_deploy_of(release: Release) -> Deploy:
    return Deploy.objects.filter(environment__name="staging", release=release).latest("id")


def page(client, user, name, *args, **query) -> str:
    client.force_login(user)
    response = client.get(reverse(name, args=args), query)
    assert response.status_code == 200
    return response.content.decode()


def promote_link(environment, release) -> str:
    return (
        f'<a class="button primary" href="/deploys/new/?environment={environment.pk}&amp;'
        f'release={release.pk}">Promote {release.tag} to {environment.name}</a>'
    )


# --- the Promote button ----------------------------------------------------------------------


def test_a_successful_staging_deploy_offers_promotion_to_production_prefilled(
    client, requester, production, v130
):
    html = page(client, requester, "deployments:deploy-detail", staging_deploy_of(v130).pk)

    assert 'id="promote-production" data-allowed="true"' in html
    assert promote_link(production, v130) in html
    form = page(
        client,
        requester,
        "deployments:deploy-new",
        environment=production.pk,
        release=v130.pk,
    )
    assert f'<option value="{production.pk}" selected>' in form
    assert f'<option value="{v130.pk}" selected>' in form
    assert 'data-met="true"' in form


def test_the_request_forms_notes_follow_the_chosen_release(
    client, requester, production, v130, v131
):
    """The form fetches its notes again when the release changes (htmx, the typed reason stays
    in the page): only the notes come back, for the release now chosen."""
    client.force_login(requester)
    notes = client.get(
        reverse("deployments:deploy-new"),
        {"environment": production.pk, "release": v131.pk},
        headers={"HX-Request": "true", "HX-Target": "request-notes"},
    ).content.decode()
    assert notes.lstrip().startswith('<div id="request-notes"')
    assert 'data-met="false"' in notes and NEVER_ON_STAGING in notes
    assert "<form" not in notes and "textarea" not in notes
    notes = client.get(
        reverse("deployments:deploy-new"),
        {"environment": production.pk, "release": v130.pk},
        headers={"HX-Request": "true", "HX-Target": "request-notes"},
    ).content.decode()
    assert 'data-met="true"' in notes and NEVER_ON_STAGING not in notes


def test_promotion_waits_for_the_rule_and_says_how_long_it_has_run(
    client, requester, production, v131, now, time_machine
):
    rehearsal = rehearse(v131, finished_at=now - timedelta(minutes=4))

    html = page(client, requester, "deployments:deploy-detail", rehearsal.pk)

    assert 'id="promote-production" data-allowed="false"' in html
    assert '<button type="button" disabled aria-describedby=' in html
    assert "v1.3.1 has run healthy there for 4 of 10 minutes; wait 6 more." in html
    assert promote_link(production, v131) not in html
    time_machine.move_to(now + timedelta(minutes=6), tick=False)
    assert promote_link(production, v131) in page(
        client, requester, "deployments:deploy-detail", rehearsal.pk
    )


def test_only_people_who_may_request_deploys_see_promote(client, viewer, v130):
    html = page(client, viewer, "deployments:deploy-detail", staging_deploy_of(v130).pk)
    assert 'class="promote"' not in html


def test_no_promote_after_the_last_environment_or_for_a_failed_deploy(
    client, requester, production, v130, staging, now
):
    on_production = Deploy.objects.filter(environment=production).latest("id")
    assert 'class="promote"' not in page(
        client, requester, "deployments:deploy-detail", on_production.pk
    )
    failed = rehearse(v130, finished_at=now, state=Deploy.State.FAILED)
    assert 'class="promote"' not in page(client, requester, "deployments:deploy-detail", failed.pk)


def test_the_release_page_offers_promotion_or_says_why_not(
    client, requester, production, v130, v131
):
    rehearsed = page(client, requester, "deployments:release-detail", v130.pk)
    not_yet = page(client, requester, "deployments:release-detail", v131.pk)

    assert promote_link(production, v130) in rehearsed
    assert 'id="promote-production" data-allowed="false"' in not_yet
    assert f"Not yet: {NEVER_ON_STAGING}" in not_yet
    # Staging has nothing before it: a plain deploy link.
    assert "Deploy to staging</a>" in not_yet


def test_a_release_already_live_on_the_target_is_not_offered_again(
    client, requester, production, demo
):
    html = page(client, requester, "deployments:release-detail", production.current_release.pk)
    assert "production: already live" in html and 'id="promote-production"' not in html


# --- the rehearsal evidence ------------------------------------------------------------------


def test_the_request_keeps_its_rehearsal_shown_on_the_deploy_and_in_the_drawer(
    client, sandbox, requester, approver, production, v131, now
):
    rehearsal = rehearse(v131, finished_at=now - timedelta(minutes=25))

    deploy = deploy_request(
        environment=production, release=v131, requested_by=requester, reason="promote v1.3.1"
    )

    assert deploy.rehearsal == rehearsal
    event = AuditEvent.objects.get(verb="deploy.requested", target_id=str(deploy.pk))
    assert event.data["rehearsal_deploy"] == rehearsal.pk
    evidence = (
        f'Deploy <a href="/deploys/{rehearsal.pk}/">#{rehearsal.pk}</a> succeeded on staging at '
    )
    tail = "; it had run healthy for 25\xa0minutes when this was requested (10 min required)."
    drawer = page(client, approver, "approvals:deploy-drawer", deploy.pk)
    detail = page(client, approver, "deployments:deploy-detail", deploy.pk)
    for html in (drawer, detail):
        assert evidence in html and tail in html


def test_a_staging_deploy_has_no_rehearsal_and_a_broken_one_does_not_count(
    sandbox, admin_user, requester, production, staging, v130, demo, now
):
    assert (
        deploy_request(
            environment=staging,
            release=v130,
            requested_by=requester,
            reason="again",
            confirm_no_op=True,
        ).rehearsal
        is None
    )
    Deploy.objects.filter(environment=staging, state=Deploy.State.REQUESTED).delete()
    rehearse(demo.releases.get(version="1.2.0"), finished_at=now, state=Deploy.State.FAILED)

    deploy = deploy_request(
        environment=production,
        release=v130,
        requested_by=admin_user,
        reason="staging broke for another reason",
        overrides=["promotion"],
        override_reason="the failure on staging is unrelated",
    )

    assert deploy.rehearsal is None and deploy.overrides == ["promotion"]


# --- an override of the rule -----------------------------------------------------------------


def test_an_override_of_the_rule_is_notified_and_shown_on_the_deploy_and_drawer(
    client, sandbox, admin_user, approver, production, v131, demo, now
):
    demo.notification_webhook_url = "http://127.0.0.1:9/hook"
    demo.notification_webhook_secret = "override-hook-secret"
    demo.save()

    deploy = deploy_request(
        environment=production,
        release=v131,
        requested_by=admin_user,
        reason="hotfix",
        overrides=["promotion"],
        override_reason="customer outage, rehearsed by hand",
    )

    notification = Notification.objects.get(deploy=deploy, event="deploy.override")
    text = notification.payload["text"]
    assert text.startswith(
        f"Gate overridden by an admin: hot-dash v1.3.1 → production (deploy #{deploy.pk})\n"
        "root overrode the promotion rule: customer outage, rehearsed by hand\n"
        f"Missing: {NEVER_ON_STAGING}"
    )
    event = AuditEvent.objects.get(verb="deploy.override", target_id=str(deploy.pk))
    assert event.data["promotion_missing"] == NEVER_ON_STAGING
    shown = "root overrode the promotion rule: customer outage, rehearsed by hand"
    none = "None counted when requested: the promotion rule was overridden."
    for html in (
        page(client, approver, "approvals:deploy-drawer", deploy.pk),
        page(client, approver, "deployments:deploy-detail", deploy.pk),
    ):
        assert shown in html and none in html


def test_every_overridable_gate_has_a_label():
    from approvals import policy

    assert set(OVERRIDE_LABELS) == set(policy.OVERRIDABLE)


# --- the pipeline ----------------------------------------------------------------------------


def pipeline_of(html: str, release: Release) -> list[tuple[str, str]]:
    import re

    row = html.split(f'id="release-{release.pk}">')[1].split("</tr>")[0]
    return re.findall(r'data-outcome="(\w+)"><span class="state[\w -]*">(\w+) ', row)


def test_the_releases_page_shows_where_each_release_ran(client, viewer, demo, v130, v131, now):
    rehearse(v131, finished_at=now, state=Deploy.State.FAILED)

    html = page(client, viewer, "deployments:release-list")

    assert pipeline_of(html, v130) == [("succeeded", "staging"), ("never", "production")]
    assert pipeline_of(html, v131) == [("failed", "staging"), ("never", "production")]
    v120 = demo.releases.get(version="1.2.0")
    assert pipeline_of(html, v120) == [("succeeded", "staging"), ("succeeded", "production")]
    assert 'aria-label="Where v1.3.0 has run"' in html


def test_the_pipeline_costs_the_same_queries_whatever_the_number_of_releases(
    client, viewer, demo, v130, now
):
    client.force_login(viewer)
    url = reverse("deployments:release-list")
    client.get(url)  # the session and the first-request caches
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    for n in range(5):
        extra = Release.objects.create(
            app=demo,
            version=f"2.0.{n}",
            tag=f"v2.0.{n}",
            commit_sha=f"{n:040d}",
            image_ref=f"registry.fly.io/hot-dash:v2.0.{n}",
            image_digest="sha256:" + f"{n}" * 64,
            validation=Release.Validation.VALID,
        )
        rehearse(extra, finished_at=now - timedelta(minutes=n))
        rehearse(extra, finished_at=now, state=Deploy.State.FAILED)
    with CaptureQueriesContext(connection) as after:
        html = client.get(url).content.decode()

    assert "v2.0.4" in html
    assert len(after) == len(before)


# --- the demo --------------------------------------------------------------------------------


def test_the_demo_has_one_release_ready_to_promote_and_a_newer_one_that_is_not(
    production, v130, v131, now
):
    assert v131.published_at > v130.published_at
    ready = promotion_check(environment=production, release=v130, now=now)
    assert ready.met and ready.rehearsal.environment.name == "staging"
    assert ready.healthy_minutes >= 7 * 24 * 60  # weeks ago
    waiting = promotion_check(environment=production, release=v131, now=now)
    assert not waiting.met and waiting.rehearsal is None
    assert waiting.missing == NEVER_ON_STAGING
    assert production.current_release.version == "1.2.0"
    assert v131.is_deployable
