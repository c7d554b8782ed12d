"""The personal queue: "Waiting for you" holds only what the user may decide now, and the nav
badge counts exactly those, per role."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.selectors import WAITING_COUNT_SQL
from approvals.services import approval_decide

HTMX = {"HX-Request": "true"}


@pytest.fixture
def people(demo):
    users = get_user_model().objects
    return {name: users.get(username=name) for name in ("alice", "bob", "carol", "dave")}


@pytest.fixture
def two_requests(request_deploy, people, staging, production, v130):
    """alice asks for production (two approvals), bob for staging (made to need one: a
    second request for production would supersede alice's)."""
    production.approvals_required = 2
    production.save(update_fields=["approvals_required"])
    staging.approvals_required = 1
    staging.save(update_fields=["approvals_required"])
    alices = request_deploy(requested_by=people["alice"]).approval_request
    bobs = request_deploy(requested_by=people["bob"], environment=staging).approval_request
    return alices, bobs


def _sections(client: Client) -> dict[str, str]:
    html = client.get(reverse("approvals:queue"), headers=HTMX).content.decode()
    you, others = html.split('id="waiting-for-others"')
    return {"you": you, "others": others}


def _badge(client: Client, page: str = "approvals:pending-count") -> int:
    html = client.get(reverse(page)).content.decode()
    return int(re.search(r'<span id="pending-count"[^>]*>(\d+)</span>', html).group(1))


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_approver_sees_others_requests_for_them_and_their_own_for_others(two_requests, people):
    alices, bobs = two_requests
    bob = _client(people["bob"])
    sections = _sections(bob)
    assert f'id="approval-{alices.pk}"' in sections["you"]
    assert f'id="approval-{bobs.pk}"' in sections["others"]
    assert "You requested this deploy" in sections["others"]
    assert _badge(bob) == 1
    assert _badge(bob, "overview") == 1


def test_a_decided_request_moves_to_waiting_for_others(two_requests, people):
    alices, _bobs = two_requests
    approval_decide(request=alices, user=people["carol"], verdict="approve", comment="ok")
    carol = _client(people["carol"])
    sections = _sections(carol)
    assert f'id="approval-{alices.pk}"' in sections["others"]
    assert "You have already decided this request." in sections["others"]
    # carol may still decide bob's staging request.
    assert _badge(carol) == 1
    # bob still sees alice's, which needs a second approval.
    assert _badge(_client(people["bob"])) == 1


@pytest.mark.parametrize("name", ["alice", "dave"])
def test_deployers_and_viewers_have_nothing_waiting_for_them(two_requests, people, name):
    alices, bobs = two_requests
    client = _client(people[name])
    sections = _sections(client)
    assert "Nothing is waiting for your decision." in sections["you"]
    assert f'id="approval-{alices.pk}"' in sections["others"]
    assert f'id="approval-{bobs.pk}"' in sections["others"]
    assert _badge(client) == 0
    assert _badge(client, "overview") == 0


def test_an_expired_request_not_yet_swept_is_nobodys_to_decide(two_requests, people):
    alices, _bobs = two_requests
    alices.expires_at = timezone.now() - timedelta(minutes=1)
    alices.save(update_fields=["expires_at"])
    bob = _client(people["bob"])
    assert f'id="approval-{alices.pk}"' in _sections(bob)["others"]
    assert _badge(bob) == 0


def test_self_approval_environments_let_the_requester_decide(two_requests, people, staging):
    _alices, bobs = two_requests
    staging.allow_self_approval = True
    staging.save(update_fields=["allow_self_approval"])
    bob = _client(people["bob"])
    assert f'id="approval-{bobs.pk}"' in _sections(bob)["you"]
    assert _badge(bob) == 2


def test_the_badge_is_counted_only_where_it_is_shown(two_requests, people):
    """A page counts it once; an htmx fragment (the deploy page polls its live part every
    2 s) has no badge and does not count it."""
    alices, _bobs = two_requests
    bob = _client(people["bob"])
    deploy_page = reverse("deployments:deploy-detail", args=[alices.deploy_id])

    def badge_queries(**headers) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert bob.get(deploy_page, headers=headers).status_code == 200
        return sum(WAITING_COUNT_SQL.strip()[:40] in query["sql"] for query in queries)

    assert badge_queries() == 1
    assert badge_queries(**HTMX) == 0


def test_the_queue_costs_the_same_queries_however_many_approvers(
    pending, make_user, viewer, django_assert_num_queries
):
    """Whether each approver may still decide each request is worked out from one read of the
    approvers and their roles, not a query per approver."""

    def eligible(html: str) -> int:
        return int(re.search(r"(\d+) eligible for 1 more", html).group(1))

    client = _client(viewer)
    client.get(reverse("approvals:queue"))
    with CaptureQueriesContext(connection) as before:
        html = client.get(reverse("approvals:queue")).content.decode()
    for n in range(5):
        make_user(f"approver-{n}", "approver")
    with django_assert_num_queries(len(before.captured_queries)):
        more = client.get(reverse("approvals:queue")).content.decode()
    assert eligible(more) == eligible(html) + 5
