"""Sign in with GitHub in a real chromium, against the live sandbox over HTTP: a member of the
approvers team signs in on the sandbox's "sign in as" page and approves in the drawer; removed
from the team through the sandbox's control API, after a refresh they can no longer approve and
their API token is refused; every step is in the audit log."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth import get_user_model

from approvals.models import ApprovalRequest, AuditEvent
from deployments.models import GitHubIdentity, Release
from deployments.services.github_accounts import github_roles_refresh_all
from deployments.services.requests import deploy_request
from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.test_layout import overflow_and_violations

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def request_production_deploy(demo, reason: str, *, confirm_no_op: bool = False):
    return deploy_request(
        environment=demo.environments.get(name="production"),
        release=Release.objects.get(app=demo, version="1.3.0"),
        requested_by=get_user_model().objects.get(username="alice"),
        reason=reason,
        confirm_no_op=confirm_no_op,
    )


def test_the_sign_in_page_fits_a_phone_and_passes_axe(browser, live_server, demo):
    page = browser.new_context(**PHONE).new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#sign-in-github").wait_for()
    assert overflow_and_violations(page, PHONE["viewport"]["width"]) == []


def test_github_team_member_approves_then_loses_the_role(browser, live_server, live_sandbox, demo):
    live_sandbox.webhook.url = ""  # the team change reaches HotDash by the refresh below
    first = request_production_deploy(demo, "ship the audit export")

    page = browser.new_context(**DESKTOP).new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{live_server.url}/approvals/")  # not signed in: the sign-in page
    page.click("#sign-in-github")
    page.wait_for_url(f"{live_sandbox.url}/login/oauth/authorize*")
    page.click("button[value=bob]")  # the sandbox's "Sign in as bob"
    page.wait_for_url(f"{live_server.url}/approvals/")
    bob = GitHubIdentity.objects.get(login="bob").user

    # An approver now: approve in the drawer.
    page.locator(f"#approval-{first.approval_request.pk} a").click()
    drawer = page.locator("#drawer-root dialog[data-drawer][open]")
    drawer.locator("textarea[name=comment]").fill("looks good")
    drawer.locator("button[value=approve]").click()
    page.locator(".toast", has_text=f"Approved deploy #{first.pk}").wait_for()
    first.approval_request.refresh_from_db()
    assert first.approval_request.state == ApprovalRequest.State.APPROVED

    # A personal API token, made on the profile page.
    page.goto(f"{live_server.url}/profile/")
    page.fill("input[name=name]", "cli")
    page.click("button:has-text('Create token')")
    raw = page.locator("#new-token code").inner_text().strip()
    api = f"{live_server.url}/api/v1/deploys"
    bearer = {"Authorization": f"Bearer {raw}"}
    assert httpx.get(api, headers=bearer).status_code == 200

    # Removed from the team on GitHub; HotDash's next refresh takes the role away.
    # The approved deploy ahead brings v1.3.0: this one would change nothing, knowingly.
    second = request_production_deploy(demo, "and the next one", confirm_no_op=True)
    removed = httpx.delete(f"{live_sandbox.url}/_sandbox/teams/approvers/members/bob")
    assert removed.status_code == 200
    assert github_roles_refresh_all() == 1

    assert page.goto(f"{live_server.url}/approvals/").status == 403
    assert "Your role does not allow this." in page.locator("#forbidden").inner_text()
    drawer_url = f"{live_server.url}/approvals/{second.approval_request.pk}/"
    assert page.goto(drawer_url).status == 403
    assert httpx.get(api, headers=bearer).status_code == 401
    second.approval_request.refresh_from_db()
    assert second.approval_request.state == ApprovalRequest.State.PENDING

    verbs = list(
        AuditEvent.objects.filter(actor_user=bob)
        .exclude(verb__startswith="webhook.")
        .order_by("id")
        .values_list("verb", flat=True)
    )
    assert verbs == ["auth.login", "approval.approved", "deploy.queued", "api_token.created"]
    changes = AuditEvent.objects.filter(verb="user.role_changed", target_id=str(bob.pk))
    assert [(e.data["from"], e.data["to"], e.data["team"]) for e in changes.order_by("id")] == [
        ("none", "approver", "hotdash-demo/approvers"),
        ("approver", "none", "hotdash-demo/approvers"),
    ]
    assert AuditEvent.objects.filter(verb="user.created_from_github").count() == 1
    revoked = AuditEvent.objects.get(verb="api_token.revoked")
    assert revoked.data["prefix"] == raw[:10] and revoked.actor_name == "system"
