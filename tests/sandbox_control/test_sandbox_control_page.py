from __future__ import annotations

import pytest
from django.urls import reverse

from approvals.models import AuditEvent

URL = "/ops/sandbox/"


@pytest.mark.parametrize("role", ["outsider", "viewer", "requester", "approver"])
def test_only_admins_may_simulate(client, db, sandbox, request, role):
    client.force_login(request.getfixturevalue(role))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"action": "fail_next", "count": 1}).status_code == 403
    assert not sandbox.calls()
    assert not AuditEvent.objects.filter(verb__startswith="sandbox.").exists()


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_admin_sees_the_page(client, admin_user):
    client.force_login(admin_user)
    assert client.get(URL).status_code == 200


def test_page_is_absent_outside_sandbox_mode(client, admin_user, settings):
    settings.SANDBOX_MODE = False
    client.force_login(admin_user)
    assert client.get(URL).status_code == 404


def test_open_pull_reaches_the_sandbox_and_is_audited(client, admin_user, sandbox):
    sandbox.webhook.url = ""  # keep the simulated delivery inside the sandbox for this test
    client.force_login(admin_user)
    response = client.post(
        URL, {"action": "open_pull", "title": "Add dark mode", "branch": "dark-mode"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("sandbox-control")
    page = client.get(response["Location"]).content.decode()
    assert "Opened PR #" in page and "from dark-mode" in page
    pulls = sandbox.world.summary()["github"]["pulls"]
    assert [(pull["branch"], pull["state"]) for pull in pulls.values()] == [("dark-mode", "open")]
    event = AuditEvent.objects.get(verb="sandbox.open_pull")
    assert event.actor_name == admin_user.username
    assert event.data["params"] == {
        "action": "open_pull",
        "title": "Add dark mode",
        "branch": "dark-mode",
    }


def test_failing_image_is_set_in_the_sandbox(client, admin_user, sandbox):
    client.force_login(admin_user)
    client.post(URL, {"action": "fail_next", "count": 2})
    assert sandbox.world.fly.fail_next == 2


def test_missing_fields_are_422_and_nothing_happens(client, admin_user, sandbox):
    client.force_login(admin_user)
    response = client.post(URL, {"action": "push"})
    assert response.status_code == 422
    assert b"Required for this action." in response.content
    assert not sandbox.calls()
    assert not AuditEvent.objects.filter(verb__startswith="sandbox.").exists()
