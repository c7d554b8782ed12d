"""Said before it happens: the queue a deploy would join (one order for the engine and every
page), what will be live when it starts, and the pending requests its approval supersedes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import AuditEvent
from approvals.services import approval_decide
from deployments.models import Deploy, Release
from deployments.queue_order import queued_before
from deployments.selectors.activity import environment_activity
from deployments.selectors.queue import queue_position
from deployments.services.tokens import api_token_create

HTMX = {"HX-Request": "true"}
State = Deploy.State
Kind = Deploy.Kind


def said(html: bytes | str, element_id: str) -> str:
    """The text of the paragraph ``element_id``, whitespace collapsed."""
    text = html.decode() if isinstance(html, bytes) else html
    return " ".join(text.split(f'id="{element_id}"')[1].split("</p>")[0].split())


@pytest.fixture
def v120(demo) -> Release:
    return Release.objects.get(app=demo, version="1.2.0")


@pytest.fixture
def make_deploy(staging, v120, requester):
    def make(state: str, *, kind: str = Kind.DEPLOY, queued_minutes_ago: int = 0) -> Deploy:
        now = timezone.now()
        return Deploy.objects.create(
            environment=staging,
            release=v120,
            kind=kind,
            state=state,
            requested_by=requester,
            reason="test",
            queued_at=now - timedelta(minutes=queued_minutes_ago),
            started_at=now if state in Deploy.ACTIVE_STATES else None,
        )

    return make


def test_the_pages_and_the_engine_share_one_queue_order(staging, make_deploy):
    deploy = make_deploy(State.QUEUED, queued_minutes_ago=3)
    rollback = make_deploy(State.QUEUED, kind=Kind.ROLLBACK, queued_minutes_ago=2)
    automatic = make_deploy(State.QUEUED, kind=Kind.AUTO_ROLLBACK, queued_minutes_ago=1)
    later = make_deploy(State.QUEUED)
    expected = [automatic, rollback, deploy, later]

    assert [queue_position(deploy=d) for d in expected] == [1, 2, 3, 4]
    assert environment_activity(environment_ids=[staging.pk])[staging.pk].queued == expected
    # What the engine's claim filters by: exactly the deploys ahead in that order.
    queued = Deploy.objects.filter(environment=staging, state=State.QUEUED)
    for index, item in enumerate(expected):
        ahead = set(queued.exclude(pk=item.pk).filter(queued_before(item)))
        assert ahead == set(expected[:index])


def test_the_request_form_names_the_deploy_it_would_wait_behind(
    client, sandbox, staging, v120, requester, make_deploy
):
    running = make_deploy(State.RUNNING)
    queued = make_deploy(State.QUEUED)
    queued.release = Release.objects.get(app=staging.app, version="1.1.1")
    queued.save()
    client.force_login(requester)
    url = reverse("deployments:deploy-new") + f"?environment={staging.pk}&release={v120.pk}"
    html = client.get(url).content.decode()
    busy = said(html, "outlook-busy")
    assert f">#{queued.pk}</a> (v1.1.1, queued), 2 deploys in all before it." in busy
    assert "When it starts, <strong>v1.1.1</strong> will be live if they succeed" in busy
    assert "not v1.3.0 as now" in busy

    queued.delete()
    busy = said(client.get(url).content, "outlook-busy")
    assert f">#{running.pk}</a> (v1.2.0, running)." in busy
    assert f"will be live if #{running.pk} succeeds, not v1.3.0 as now." in busy


def test_an_idle_environment_says_nothing_about_a_queue(client, sandbox, staging, v120, requester):
    client.force_login(requester)
    url = reverse("deployments:deploy-new") + f"?environment={staging.pk}&release={v120.pk}"
    html = client.get(url).content.decode()
    assert "outlook-busy" not in html and "outlook-supersedes" not in html


def test_superseding_is_said_on_the_form_the_drawer_and_both_deploys(
    client, sandbox, production, v130, requester, approver, request_deploy
):
    first = request_deploy(reason="first")
    client.force_login(requester)
    form_url = reverse("deployments:deploy-new") + f"?environment={production.pk}&release={v130.pk}"
    form = client.get(form_url).content.decode()
    text = said(form, "outlook-supersedes")
    assert (
        "Once approved, this request supersedes the earlier pending request for production" in text
    )
    assert f">#{first.pk}</a> (v1.3.0, by requester); it will end superseded." in text

    second = request_deploy(reason="second")
    client.force_login(approver)
    drawer = client.get(reverse("approvals:drawer", args=[second.approval_request.pk])).content
    text = said(drawer, "outlook-supersedes")
    assert text.split(">", 1)[1].startswith("Approving this request supersedes")
    assert f"#{first.pk}</a>" in text
    # The first request's own drawer supersedes nothing: it is the older one.
    older = client.get(reverse("approvals:drawer", args=[first.approval_request.pk])).content
    assert "outlook-supersedes" not in older.decode()

    approval_decide(request=second.approval_request, user=approver, verdict="approve")
    first.refresh_from_db()
    assert first.state == State.SUPERSEDED and first.superseded_by_id == second.pk
    old_page = client.get(reverse("deployments:deploy-detail", args=[first.pk])).content.decode()
    assert f'superseded by <a href="{reverse("deployments:deploy-detail", args=[second.pk])}"' in (
        old_page
    )
    new_page = client.get(reverse("deployments:deploy-detail", args=[second.pk])).content.decode()
    replaced = said(new_page, "outlook-replaced")
    assert f">#{first.pk}</a> (v1.3.0)." in replaced and "Supersedes" in replaced
    assert "outlook-supersedes" not in new_page


def test_a_request_queued_at_once_supersedes_nothing(
    client, sandbox, staging, v120, requester, request_deploy
):
    # Staging needs no approval: nothing is approved, so nothing is superseded.
    request_deploy(environment=staging, release=v120, reason="first")
    client.force_login(requester)
    url = reverse("deployments:deploy-new") + f"?environment={staging.pk}&release={v120.pk}"
    assert "outlook-supersedes" not in client.get(url).content.decode()


def test_a_deploy_that_changes_nothing_says_so_and_needs_a_confirmation(
    client, sandbox, production, requester, approver
):
    live = production.current_release
    client.force_login(requester)
    url = reverse("deployments:deploy-new")
    form = client.get(url + f"?environment={production.pk}&release={live.pk}").content.decode()
    assert said(form, "outlook-no-op").endswith(
        ">v1.2.0 is already live on production: this deploy changes nothing."
    )
    assert 'name="confirm_no_op"' in form

    asked = {"environment": production.pk, "release": live.pk, "reason": "same again"}
    refused = client.post(url, asked, headers=HTMX)
    assert refused.status_code == 409
    html = refused.content.decode()
    assert 'data-code="no_op_unconfirmed"' in html
    assert "this deploy changes nothing. Confirm that you mean to deploy it anyway." in html
    assert 'name="confirm_no_op"' in html  # the checkbox is there to tick
    assert not Deploy.objects.filter(reason="same again").exists()

    client.post(url, {**asked, "confirm_no_op": "on"})
    deploy = Deploy.objects.get(reason="same again")
    assert deploy.state == State.AWAITING_APPROVAL
    event = AuditEvent.objects.get(verb="deploy.requested", target_id=str(deploy.pk))
    assert event.data["no_op"] is True

    client.force_login(approver)
    drawer = client.get(reverse("approvals:drawer", args=[deploy.approval_request.pk])).content
    assert "v1.2.0 is already live on production: this deploy changes nothing." in said(
        drawer, "outlook-no-op"
    )
    assert 'name="confirm_no_op"' not in drawer.decode()


def test_a_deploy_of_what_the_deploy_ahead_brings_changes_nothing(
    client, sandbox, staging, v120, requester, make_deploy
):
    ahead = make_deploy(State.QUEUED)  # v1.2.0, while staging runs v1.3.0
    client.force_login(requester)
    url = reverse("deployments:deploy-new") + f"?environment={staging.pk}&release={v120.pk}"
    assert said(client.get(url).content, "outlook-no-op").endswith(
        f">v1.2.0 will already be live on staging when it starts (deploy #{ahead.pk}): "
        "this deploy changes nothing."
    )


def test_the_api_refuses_a_deploy_that_changes_nothing_unless_confirmed(
    client, sandbox, production, requester
):
    token = api_token_create(user=requester, name="ci")[1]
    body = {"app": "hot-dash", "environment": "production", "version": "1.2.0", "reason": "again"}
    auth = {"Authorization": f"Bearer {token}"}
    url = "/api/v1/deploys"
    refused = client.post(url, body, content_type="application/json", headers=auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "no_op_unconfirmed"
    assert "this deploy changes nothing" in refused.json()["error"]["message"]
    created = client.post(
        url, {**body, "confirm_no_op": True}, content_type="application/json", headers=auth
    )
    assert created.status_code == 201
