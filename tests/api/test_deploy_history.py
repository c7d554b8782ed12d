"""The deploy history: the same filters on the page and in the API, keyset pages, approvers,
and a bounded number of queries whatever the number of rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, Decision
from deployments.models import Deploy, Environment

State = Deploy.State


@pytest.fixture
def history(demo, requester, approver, second_approver):
    """60 production deploys of v1.3.0 by the requester, approved by both approvers, and the
    seeded history (alice's successful deploys)."""
    production = Environment.objects.get(app=demo, name="production")
    release = demo.releases.get(version="1.3.0")
    made = []
    for index in range(60):
        deploy = Deploy.objects.create(
            environment=production,
            release=release,
            state=State.FAILED if index % 2 else State.SUCCEEDED,
            requested_by=requester,
            reason=f"r{index}",
            created_at=timezone.now() - timedelta(days=2),
            started_at=timezone.now() - timedelta(minutes=5),
            finished_at=timezone.now(),
        )
        request = ApprovalRequest.objects.create(
            deploy=deploy, state=ApprovalRequest.State.APPROVED, expires_at=timezone.now()
        )
        for user in (approver, second_approver):
            Decision.objects.create(request=request, user=user, verdict="approve")
        made.append(deploy)
    return made


def test_the_api_filters_and_pages_the_history(api, history, viewer):
    failed = api(viewer, "get", "/deploys?state=failed&approver=approver&version=v1.3.0").json()
    assert [d["id"] for d in failed["deploys"]] == [
        d.pk for d in reversed(history) if d.state == State.FAILED
    ]
    assert failed["deploys"][0]["approved_by"] == ["approver", "approver2"]
    assert failed["next_before"] is None
    alice = api(viewer, "get", "/deploys?requester=alice&environment=staging").json()["deploys"]
    assert alice and {d["requested_by"] for d in alice} == {"alice"}
    assert {d["environment"] for d in alice} == {"staging"}
    first = api(viewer, "get", "/deploys").json()
    assert len(first["deploys"]) == 50 and first["next_before"] == first["deploys"][-1]["id"]
    rest = api(viewer, "get", f"/deploys?before={first['next_before']}").json()
    assert rest["deploys"][0]["id"] < first["next_before"] and rest["next_before"] is None
    today = timezone.now().date()
    recent = api(viewer, "get", f"/deploys?since={today - timedelta(days=2)}&until={today}")
    assert len(recent.json()["deploys"]) == 50


def test_the_page_filters_shows_approvers_duration_and_pages(client, history, viewer, requester):
    client.force_login(viewer)
    url = reverse("deployments:deploy-list")
    html = client.get(url + "?state=failed&approver=approver2").content.decode()
    assert f'id="deploy-{history[1].pk}"' in html and f'id="deploy-{history[0].pk}"' not in html
    assert "approver, approver2" in html and "5 min 0 s" in html
    first = client.get(url).content.decode()
    assert 'id="deploys-older"' in first and 'id="new-deploy"' not in first
    client.force_login(requester)
    assert 'id="new-deploy"' in client.get(url).content.decode()
    bad = client.get(url + "?until=2026-01-01&since=2026-02-01")
    assert (
        bad.status_code == 400 and "The end date is before the start date." in bad.content.decode()
    )


@pytest.mark.parametrize("rows", [0, 60])
def test_a_page_costs_at_most_eight_queries(
    client, demo, viewer, request, rows, django_assert_max_num_queries
):
    if rows:
        request.getfixturevalue("history")
    client.force_login(viewer)
    with django_assert_max_num_queries(8):
        client.get(reverse("deployments:deploy-list") + "?app=hot-dash")


def test_a_page_reads_approvers_only_when_one_of_its_deploys_needed_approval(
    client, history, viewer
):
    """The approvers are one more query, and none on a page of deploys that needed no request
    (the seeded history: alice's deploys, never approved)."""
    client.force_login(viewer)
    url = reverse("deployments:deploy-list")
    with CaptureQueriesContext(connection) as approved:
        html = client.get(url + "?state=failed").content.decode()
    assert "approver, approver2" in html
    with CaptureQueriesContext(connection) as seeded:
        html = client.get(url + "?requester=alice").content.decode()
    assert 'id="deploy-' in html
    assert len(seeded.captured_queries) == len(approved.captured_queries) - 1
    assert not any("approvals_decision" in q["sql"] for q in seeded.captured_queries)
