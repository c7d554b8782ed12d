"""Add app in a real chromium, at phone and desktop size: the repository list, a proposal, a
refusal and, after confirming, the checklist all fit the screen and pass axe."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from approvals import policy
from deployments.models import App
from deployments.services.installations import installation_repositories_refresh
from hotdash.sandbox import demo
from hotdash.sandbox.github_app import DEMO_APP_ID
from tests.browser.conftest import DESKTOP, PASSWORD, PHONE
from tests.browser.test_layout import overflow_and_violations

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
DEMO_REPO = f"{demo.REPO_OWNER}/{demo.REPO_NAME}"


@pytest.fixture
def admin(live_sandbox, settings, app_key_pair):
    private, public = app_key_pair
    live_sandbox.register_github_app(public, DEMO_APP_ID)
    settings.GITHUB_APP_ID = DEMO_APP_ID
    settings.GITHUB_APP_PRIVATE_KEY = private
    user = get_user_model().objects.create_user(username="ada", password=PASSWORD)
    user.groups.add(Group.objects.get(name=policy.ADMIN))
    installation_repositories_refresh(actor=user)
    return user


@pytest.mark.parametrize("device", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_add_app_pages_fit_and_pass_axe(signed_in, live_server, admin, device):
    page = signed_in("ada", **device)
    width = device["viewport"]["width"]
    problems = {}
    for query in ("", f"?repository={DEMO_REPO}", "?repository=hotdash-demo/secret"):
        page.goto(f"{live_server.url}/apps/add/{query}")
        problems[query or "list"] = overflow_and_violations(page, width)
    assert (
        page.locator("#app-add-error")
        .inner_text()
        .startswith("The GitHub App cannot see hotdash-demo/secret")
    )

    page.goto(f"{live_server.url}/apps/add/?repository={DEMO_REPO}")
    page.get_by_role("button", name="Add hot-dash with 2 environments").click()
    page.wait_for_selector("#app-checklist")
    problems["checklist"] = overflow_and_violations(page, width)

    assert {name: found for name, found in problems.items() if found} == {}
    assert App.objects.get().environments.count() == 2
