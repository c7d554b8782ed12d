"""Every state-changing endpoint of requesting/approving, against every role."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deployments.services.tokens import api_token_create

ROLES = ["anonymous", "outsider", "viewer", "requester", "approver", "admin_user"]
RANKS = {"outsider": 0, "viewer": 1, "requester": 2, "approver": 3, "admin_user": 4}

# (method, url name, minimum role, form data)
ACTIONS = [
    ("get", "approvals:drawer", "viewer", {}),
    ("post", "approvals:decide", "approver", {"decision": "approve"}),
    ("post", "approvals:bypass", "admin_user", {"reason": ""}),
    ("get", "deployments:deploy-new", "requester", {}),
    ("post", "deployments:deploy-new", "requester", {"reason": ""}),
    ("post", "deployments:deploy-cancel", "requester", {"reason": "no"}),
    ("post", "deployments:deploy-abort", "approver", {"reason": "stop"}),
    ("get", "deployments:environment-detail", "viewer", {}),
    ("get", "deployments:environment-machines", "viewer", {}),
    ("post", "deployments:environment-lock", "admin_user", {"action": "lock", "reason": "x"}),
    ("post", "deployments:freeze-window-add", "admin_user", {"reason": ""}),
    ("post", "deployments:freeze-window-remove", "admin_user", {}),
    ("get", "deployments:profile", "viewer", {}),
    ("post", "deployments:token-create", "viewer", {"name": "ci"}),
    ("post", "deployments:token-revoke", "viewer", {}),
    ("post", "deployments:email-preferences", "viewer", {"wanted": []}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "name", "minimum", "data"), ACTIONS)
def test_action_access(client, pending, production, request, role, method, name, minimum, data):
    user = None
    if role != "anonymous":
        user = request.getfixturevalue(role)
        client.force_login(user)
    window = production.freeze_windows.create(
        starts_at="2030-01-01T00:00Z", ends_at="2030-01-02T00:00Z", reason="x"
    )
    token_owner = user or request.getfixturevalue("viewer")
    token, _ = api_token_create(user=token_owner, name="t")
    args = {
        "approvals:drawer": [pending.pk],
        "approvals:decide": [pending.pk],
        "approvals:bypass": [pending.pk],
        "deployments:deploy-new": [],
        "deployments:deploy-cancel": [pending.deploy_id],
        "deployments:deploy-abort": [pending.deploy_id],
        "deployments:environment-detail": [production.pk],
        "deployments:environment-machines": [production.pk],
        "deployments:environment-lock": [production.pk],
        "deployments:freeze-window-add": [production.pk],
        "deployments:freeze-window-remove": [production.pk, window.pk],
        "deployments:profile": [],
        "deployments:token-create": [],
        "deployments:token-revoke": [token.pk],
        "deployments:email-preferences": [],
    }[name]
    response = getattr(client, method)(reverse(name, args=args), data)
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    elif RANKS[role] < RANKS[minimum]:
        assert response.status_code == 403
    else:
        assert response.status_code in (200, 302, 422)
