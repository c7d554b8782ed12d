"""The shared layout's pending-approvals badge: its plain-SQL count matches the ORM's rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.selectors import _pending, approval_count_pending
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


def test_the_badge_counts_exactly_the_pending_queue(open_request):
    assert approval_count_pending() == 0
    open_request(Request.PENDING, State.AWAITING_APPROVAL)
    open_request(Request.PENDING, State.AWAITING_APPROVAL)
    open_request(Request.PENDING, State.CANCELLED)  # deploy cancelled, request left pending
    open_request(Request.APPROVED, State.QUEUED)
    open_request(Request.REJECTED, State.REJECTED)
    assert approval_count_pending() == _pending().count() == 2


def test_every_page_shows_the_badge(open_request, client, viewer):
    open_request(Request.PENDING, State.AWAITING_APPROVAL)
    client.force_login(viewer)
    html = client.get(reverse("approvals:audit")).content.decode()
    assert 'aria-label="1 pending approvals">1</span>' in html
