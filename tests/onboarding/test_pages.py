"""Add app in the browser's terms: admins pick a repository the App can see, review the
proposal, confirm, and land on the checklist; refusals read as sentences; no secret shows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from approvals.models import AuditEvent
from deployments.models import App
from hotdash.sandbox import demo

pytestmark = pytest.mark.django_db
DEMO_REPO = f"{demo.REPO_OWNER}/{demo.REPO_NAME}"
ADD = reverse("deployments:app-add")


@pytest.fixture
def admin_client(client, admin_user, sandbox, github_app):
    client.force_login(admin_user)
    return client


def test_the_overview_offers_add_app_to_admins_only(client, admin_user, viewer, sandbox):
    client.force_login(viewer)
    assert ADD not in client.get(reverse("overview")).content.decode()
    client.force_login(admin_user)
    assert f'href="{ADD}"' in client.get(reverse("overview")).content.decode()


def test_reading_the_installations_lists_the_repositories(admin_client):
    page = admin_client.get(ADD).content.decode()
    assert "None yet: install the GitHub App" in page

    response = admin_client.post(reverse("deployments:installations-refresh"), follow=True)

    page = response.content.decode()
    assert f"GitHub App repositories: added {DEMO_REPO}." in page
    assert f'href="?repository={demo.REPO_OWNER}/{demo.REPO_NAME}"' in page
    assert AuditEvent.objects.filter(verb="installation.changed").count() == 1


def test_review_confirm_and_checklist(admin_client, github_app):
    admin_client.post(reverse("deployments:installations-refresh"))
    review = admin_client.get(ADD, {"repository": DEMO_REPO}).content.decode()
    assert "Proposed: hot-dash" in review
    assert 'from <span class="mono">fly.production.toml</span>' in review
    assert 'from <span class="mono">fly.toml</span>' in review
    assert "Add hot-dash with 2 environments" in review
    fingerprint = review.split('name="fingerprint" value="')[1].split('"')[0]

    response = admin_client.post(
        reverse("deployments:app-add-confirm"),
        {"repository": DEMO_REPO, "fingerprint": fingerprint},
        follow=True,
    )

    app = App.objects.get()
    assert response.redirect_chain[-1][0] == reverse("deployments:app-setup", args=[app.pk])
    page = response.content.decode()
    assert "Added hot-dash." in page
    assert "Done: A release with a checksum asset" in page
    assert f"Done: Fly token can see {demo.PRODUCTION_FLY_APP}" in page
    for shown in (review, page):
        assert "".join(github_app.splitlines()[1:-1])[:40] not in shown


def test_a_repository_the_app_cannot_see_reads_as_a_sentence(admin_client):
    page = admin_client.get(ADD, {"repository": "hotdash-demo/secret"}).content.decode()
    assert "The GitHub App cannot see hotdash-demo/secret: install the App on it" in page
    assert 'id="app-proposal"' not in page


def test_a_refused_confirm_comes_back_with_the_reason(admin_client, sandbox):
    admin_client.post(reverse("deployments:installations-refresh"))
    sandbox.set_repository_file("fly.toml", "app = [")

    response = admin_client.post(
        reverse("deployments:app-add-confirm"), {"repository": DEMO_REPO}, follow=True
    )

    assert "fly.toml on main cannot be read: not valid TOML" in response.content.decode()
    assert not App.objects.exists()
