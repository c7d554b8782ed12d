"""The permission matrix: every role against every page and every state-changing action.

Later features add their rows to PAGES and ACTIONS; the matrix must stay complete.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

ROLES = ["anonymous", "outsider", "viewer", "requester", "approver", "admin_user"]
READERS = {"viewer", "requester", "approver", "admin_user"}

PAGES = [
    ("overview", {}),
    ("deployments:release-list", {}),
    ("deployments:preview-list", {}),
    ("deployments:deploy-list", {}),
    ("deployments:rollback-list", {}),
    ("approvals:queue", {}),
    ("approvals:audit", {}),
    ("approvals:audit-export-csv", {}),
    ("approvals:audit-export-jsonl", {}),
    ("ops", {}),
    ("deployments:compliance", {}),
    ("deployments:profile", {}),
]


def login_as(client, request, role):
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "kwargs"), PAGES)
def test_page_access(client, demo, request, role, name, kwargs):
    login_as(client, request, role)
    url = reverse(name, kwargs=kwargs)
    response = client.get(url)
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    elif role in READERS:
        assert response.status_code == 200
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_detail_pages(client, demo, request, role):
    from deployments.models import Deploy, Release

    login_as(client, request, role)
    urls = [
        reverse("deployments:deploy-detail", args=[Deploy.objects.first().pk]),
        reverse("deployments:release-detail", args=[Release.objects.first().pk]),
    ]
    expected = 302 if role == "anonymous" else 200 if role in READERS else 403
    assert [client.get(url).status_code for url in urls] == [expected, expected]


# State-changing release/rollback endpoints: (method, url name, minimum role, form data).
RELEASE_ACTIONS = [
    ("post", "deployments:release-sync", "requester", {"app": "hot-dash"}),
    ("post", "deployments:release-clear-bad", "approver", {"reason": ""}),
    ("get", "deployments:rollback-form", "requester", {}),
    ("post", "deployments:rollback-form", "requester", {}),
    ("post", "deployments:emergency-acknowledge", "approver", {}),
]
RANKS = {"outsider": 0, "viewer": 1, "requester": 2, "approver": 3, "admin_user": 4}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "name", "minimum", "data"), RELEASE_ACTIONS)
def test_release_actions(client, demo, sandbox, request, role, method, name, minimum, data):
    from deployments.models import Release

    login_as(client, request, role)
    args = {
        "deployments:release-sync": [],
        "deployments:release-clear-bad": [Release.objects.first().pk],
        "deployments:rollback-form": [demo.environments.get(name="staging").pk],
        # Refused (not an emergency rollback) but still past the role check: a 302.
        "deployments:emergency-acknowledge": [
            demo.environments.get(name="staging").deploys.first().pk
        ],
    }[name]
    response = getattr(client, method)(reverse(name, args=args), data)
    if role == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    elif RANKS[role] < RANKS[minimum]:
        assert response.status_code == 403
    else:
        assert response.status_code in (200, 302, 422)


PREVIEW_ACTIONS = [
    "deployments:preview-redeploy",
    "deployments:preview-wake",
    "deployments:preview-destroy",
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", PREVIEW_ACTIONS)
def test_preview_actions(client, demo, sandbox, request, role, name):
    from deployments.models import Environment, Preview

    environment = Environment.objects.create(
        app=demo, name="pr-5", kind=Environment.Kind.PREVIEW, fly_app_name="hot-dash-pr-5"
    )
    preview = Preview.objects.create(app=demo, pr_number=5, environment=environment)
    login_as(client, request, role)
    response = client.post(reverse(name, args=[preview.pk]))
    if role == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    elif RANKS[role] < RANKS["requester"]:
        assert response.status_code == 403
    else:
        assert response.status_code == 302  # done or refused: the page shows the message


@pytest.mark.parametrize("role", ROLES)
def test_approving_a_held_fork_preview_needs_an_approver(client, demo, sandbox, request, role):
    from approvals.models import AuditEvent
    from deployments.models import Environment, Preview

    environment = Environment.objects.create(
        app=demo, name="pr-6", kind=Environment.Kind.PREVIEW, fly_app_name="hot-dash-pr-6"
    )
    preview = Preview.objects.create(
        app=demo,
        environment=environment,
        pr_number=6,
        is_fork=True,
        head_sha="a" * 40,
        state=Preview.State.AWAITING_APPROVAL,
    )
    login_as(client, request, role)
    response = client.post(
        reverse("deployments:preview-approve", args=[preview.pk]), {"sha": "b" * 40}
    )
    preview.refresh_from_db()
    assert preview.state == Preview.State.AWAITING_APPROVAL and not preview.approved_sha
    if role == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    elif RANKS[role] < RANKS["approver"]:
        assert response.status_code == 403
        assert AuditEvent.objects.filter(verb="preview.approval_refused").exists()
    else:
        assert response.status_code == 302  # refused for the stale sha: the page says why


def test_admin_requires_staff(client, demo, viewer, admin_user):
    client.force_login(viewer)
    assert client.get("/admin/").status_code == 302
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200


def test_public_endpoints_need_no_login(client, db):
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get(reverse("login")).status_code == 200


def test_pages_show_the_sandbox_banner(client, demo, viewer, settings):
    client.force_login(viewer)
    settings.SANDBOX_MODE = True
    assert b"Sandbox mode." in client.get("/").content
    settings.SANDBOX_MODE = False
    assert b"Sandbox mode." not in client.get("/").content


def test_overview_shows_each_environment(client, demo, viewer, django_assert_max_num_queries):
    client.force_login(viewer)
    with django_assert_max_num_queries(12):
        response = client.get("/")
    html = response.content.decode()
    assert "production" in html and "staging" in html
    assert "v1.2.0" in html and "v1.3.0" in html


# Adding apps (admins only): (method, url name, form data).
ONBOARDING_ACTIONS = [
    ("get", "deployments:app-add", {}),
    ("post", "deployments:app-add-confirm", {"repository": "hotdash-demo/none"}),
    ("post", "deployments:installations-refresh", {}),
    ("get", "deployments:app-setup", {}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "name", "data"), ONBOARDING_ACTIONS)
def test_onboarding_actions(client, demo, sandbox, request, role, method, name, data):
    login_as(client, request, role)
    args = [demo.pk] if name == "deployments:app-setup" else []
    response = getattr(client, method)(reverse(name, args=args), data)
    if role == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    elif role != "admin_user":
        assert response.status_code == 403
    else:
        assert response.status_code in (200, 302)
