"""The shared layout's badge of approvals waiting for the user: its plain-SQL count matches the
ORM's rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.selectors import _waiting_for, approval_count_waiting_for
from deployments.models import App, Deploy, Environment, GitHubIdentity, Release

Request = ApprovalRequest.State
State = Deploy.State


@pytest.fixture
def open_request(db):
    app = App.objects.create(name="shop", github_owner="acme", github_repo="shop", fly_org="acme")
    environment = Environment.objects.create(
        app=app, name="production", kind="production", fly_app_name="shop-production"
    )

    def make(request_state: str, deploy_state: str) -> ApprovalRequest:
        deploy = Deploy.objects.create(
            environment=environment, state=deploy_state, reason="r", requested_by_system="github"
        )
        return ApprovalRequest.objects.create(
            deploy=deploy, state=request_state, expires_at=timezone.now() + timedelta(hours=1)
        )

    return make


def test_the_badge_counts_exactly_the_queue_waiting_for_the_user(open_request, approver):
    assert approval_count_waiting_for(approver) == 0
    open_request(Request.PENDING, State.AWAITING_APPROVAL)
    open_request(Request.PENDING, State.AWAITING_APPROVAL)
    open_request(Request.PENDING, State.CANCELLED)  # deploy cancelled, request left pending
    open_request(Request.APPROVED, State.QUEUED)
    open_request(Request.REJECTED, State.REJECTED)
    own = open_request(Request.PENDING, State.AWAITING_APPROVAL)
    own.deploy.requested_by = approver
    own.deploy.save(update_fields=["requested_by"])
    decided = open_request(Request.PENDING, State.AWAITING_APPROVAL)
    decided.decisions.create(user=approver, verdict="approve")
    stale = open_request(Request.PENDING, State.AWAITING_APPROVAL)
    stale.expires_at = timezone.now() - timedelta(seconds=1)
    stale.save(update_fields=["expires_at"])
    assert approval_count_waiting_for(approver) == _waiting_for(approver).count() == 2
    own.deploy.environment.allow_self_approval = True
    own.deploy.environment.save(update_fields=["allow_self_approval"])
    assert approval_count_waiting_for(approver) == _waiting_for(approver).count() == 3


def test_the_badge_leaves_out_releases_the_approver_wrote_a_commit_of(
    open_request, approver, django_assert_num_queries
):
    written, other = (
        open_request(Request.PENDING, State.AWAITING_APPROVAL),
        open_request(Request.PENDING, State.AWAITING_APPROVAL),
    )
    app = written.deploy.environment.app
    for request, author_id in ((written, 4242), (other, 99)):
        release = Release.objects.create(
            app=app,
            version=f"1.0.{author_id}",
            tag=f"v1.0.{author_id}",
            changelog={"groups": [{"entries": [{"author": "x", "author_id": author_id}]}]},
        )
        request.deploy.release = release
        request.deploy.save(update_fields=["release"])
    assert approval_count_waiting_for(approver) == 2  # (reads the approver's roles once)
    with django_assert_num_queries(1):  # no GitHub identity: one query, nothing to judge
        assert approval_count_waiting_for(approver) == 2
    GitHubIdentity.objects.create(user=approver, github_id=4242, login="approver-gh")
    approver = type(approver).objects.get(pk=approver.pk)
    assert approval_count_waiting_for(approver) == 2  # the app does not count commit authors
    app.commit_authors_are_requesters = True
    app.save(update_fields=["commit_authors_are_requesters"])
    assert approval_count_waiting_for(approver) == _waiting_for(approver).count() == 1
    assert list(_waiting_for(approver)) == [other]


def test_every_page_shows_the_badge(open_request, client, approver):
    open_request(Request.PENDING, State.AWAITING_APPROVAL)
    client.force_login(approver)
    html = client.get(reverse("approvals:audit")).content.decode()
    assert 'aria-label="1 approvals waiting for you"' in html
