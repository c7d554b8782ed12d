"""The shared layout's badge of approvals waiting for the user: its plain-SQL count matches the
ORM's rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.selectors import _waiting_for, approval_count_waiting_for
from deployments.models import App, Deploy, Environment

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


def test_every_page_shows_the_badge(open_request, client, approver):
    open_request(Request.PENDING, State.AWAITING_APPROVAL)
    client.force_login(approver)
    html = client.get(reverse("approvals:audit")).content.decode()
    assert 'aria-label="1 approvals waiting for you"' in html
