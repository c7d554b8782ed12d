"""The deploy representation states an unsatisfiable gate and a break-glass bypass;
responses are checked against the served schema by the ``api`` fixture."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from approvals.models import ApprovalRequest
from approvals.services import approval_bypass

REQUEST = {"app": "hot-dash", "environment": "production", "version": "1.3.0", "reason": "ship"}


def test_a_gate_nobody_can_satisfy_and_its_bypass_are_in_the_deploy(api, approver, admin_user):
    get_user_model().objects.exclude(pk__in=[approver.pk, admin_user.pk]).update(is_active=False)
    admin_user.is_active = False
    admin_user.save(update_fields=["is_active"])
    created = api(approver, "post", "/deploys", REQUEST).json()
    assert created["approval"]["unsatisfiable"].startswith(
        "No eligible approver (requester excluded)"
    )
    assert created["approval"]["eligible_approvers"] == []
    assert created["approval"]["bypass"] is None

    admin_user.is_active = True
    admin_user.save(update_fields=["is_active"])
    body = api(approver, "get", f"/deploys/{created['id']}").json()
    assert body["approval"]["eligible_approvers"] == ["root"]
    assert body["approval"]["unsatisfiable"] == ""

    approval_bypass(
        request=ApprovalRequest.objects.get(deploy_id=created["id"]),
        user=admin_user,
        reason="incident 9",
        password="correct horse battery",
    )
    body = api(approver, "get", f"/deploys/{created['id']}").json()
    assert body["state"] == "queued"
    assert body["approval"]["state"] == "approved"
    assert body["approval"]["bypass"] == {"by": "root", "reason": "incident 9"}
    assert body["approval"]["unsatisfiable"] == ""
