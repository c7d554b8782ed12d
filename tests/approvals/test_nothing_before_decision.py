"""A request changes nothing but itself until it is decided: a deploy or rollback that is
refused, rejected, expires or is cancelled leaves environments (their locks included),
releases, freeze windows and everyone else's requests exactly as they were. What a rollback
implies (the bad mark, the lock) is applied when it starts (tests/engine/test_gates_at_claim.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from approvals.models import ApprovalRequest
from approvals.services import approval_decide, approval_expire_due
from deployments.models import Deploy, Environment, FreezeWindow, Release
from deployments.services.requests import deploy_request_cancel
from hotdash.errors import Refused
from tests.engine.conftest import rollback_to_111


def world(*, besides: Deploy | None = None) -> dict[str, Any]:
    """Every row a request could touch beyond itself."""
    others = Deploy.objects.exclude(pk=besides.pk) if besides else Deploy.objects.all()
    requests = ApprovalRequest.objects.filter(deploy__in=others)
    return {
        "environments": list(Environment.objects.order_by("pk").values()),
        "releases": list(Release.objects.order_by("pk").values()),
        "freeze_windows": list(FreezeWindow.objects.order_by("pk").values()),
        "other deploys": list(others.order_by("pk").values("pk", "state", "superseded_by")),
        "other approval requests": list(requests.order_by("pk").values("pk", "state")),
    }


@pytest.fixture
def colleagues_request(request_deploy, make_user):
    """Someone else's production deploy, already waiting for its approval."""
    deploy = request_deploy(requested_by=make_user("colleague", "deployer"), reason="hotfix")
    assert deploy.state == Deploy.State.AWAITING_APPROVAL
    # It outlives the request under test, which may be left to expire.
    ApprovalRequest.objects.filter(deploy=deploy).update(
        expires_at=deploy.approval_request.expires_at + timedelta(days=1)
    )
    return deploy


def reject(deploy: Deploy, approver) -> None:
    approval_decide(
        request=deploy.approval_request, user=approver, verdict="reject", comment="not now"
    )


def expire(deploy: Deploy, approver) -> None:
    at = deploy.approval_request.expires_at + timedelta(seconds=1)
    assert approval_expire_due(now=at) >= 1


def cancel(deploy: Deploy, approver) -> None:
    deploy_request_cancel(deploy=deploy, actor=deploy.requested_by, reason="withdrawn")


DECIDED = {"rejected": reject, "expired": expire, "cancelled": cancel}
ENDED = {
    "rejected": Deploy.State.REJECTED,
    "expired": Deploy.State.EXPIRED,
    "cancelled": Deploy.State.CANCELLED,
}


def assert_left_alone(before: dict[str, Any], deploy: Deploy, outcome: str) -> None:
    deploy.refresh_from_db()
    assert deploy.state == ENDED[outcome]
    assert world(besides=deploy) == before


@pytest.mark.parametrize("outcome", DECIDED)
def test_a_deploy_request_that_is_not_approved_leaves_everything_as_it_was(
    outcome, colleagues_request, request_deploy, approver
):
    before = world()
    deploy = request_deploy(reason="ship the audit export")
    assert deploy.state == Deploy.State.AWAITING_APPROVAL
    DECIDED[outcome](deploy, approver)
    assert_left_alone(before, deploy, outcome)


@pytest.mark.parametrize("outcome", DECIDED)
def test_a_rollback_request_that_is_not_approved_leaves_everything_as_it_was(
    outcome, colleagues_request, production, requester, approver
):
    before = world()
    deploy = rollback_to_111(production, requester)
    assert deploy.state == Deploy.State.AWAITING_APPROVAL and not deploy.fast_path
    assert not Environment.objects.get(pk=production.pk).is_locked
    assert not Release.objects.get(app=production.app, version="1.2.0").is_bad
    DECIDED[outcome](deploy, approver)
    assert_left_alone(before, deploy, outcome)


def test_a_fast_path_rollback_cancelled_before_it_starts_leaves_everything_as_it_was(
    colleagues_request, production, approver
):
    before = world()
    deploy = rollback_to_111(production, approver)
    assert deploy.state == Deploy.State.QUEUED and deploy.fast_path
    assert world(besides=deploy) == before  # queued, not started: nothing yet
    cancel(deploy, approver)
    assert_left_alone(before, deploy, "cancelled")


@pytest.mark.parametrize("user", ["requester", "approver"])
def test_a_refused_rollback_leaves_everything_as_it_was(
    user, colleagues_request, production, sandbox, request
):
    before = world()
    sandbox.add_fault("status", status=403, service="fly")  # refused late, while planning
    with pytest.raises(Refused) as refused:
        rollback_to_111(production, request.getfixturevalue(user))
    assert refused.value.code == "upstream_error"
    assert not Deploy.objects.filter(kind=Deploy.Kind.ROLLBACK).exists()
    assert world() == before


def test_a_refused_deploy_request_leaves_everything_as_it_was(
    colleagues_request, request_deploy, sandbox
):
    before = world()
    sandbox.add_fault("status", status=403, service="fly")
    with pytest.raises(Refused):
        request_deploy(reason="ship the audit export")
    assert world() == before
