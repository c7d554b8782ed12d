"""Roles from GitHub teams after sign-in: the beat refresh, the membership/team webhooks, what a
lost role takes with it (the API tokens), and what stays (local accounts, roles when GitHub is
down). Every change is audited with the team that caused it."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model

from approvals import policy
from approvals.models import AuditEvent
from deployments.models import ApiToken, GitHubIdentity, GitHubTeamRole, WebhookDelivery
from deployments.services.github_accounts import github_roles_refresh_all
from deployments.services.tokens import api_token_create
from deployments.tasks.github_accounts import (
    github_roles_refresh_all as github_roles_refresh_all_task,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def quiet_sandbox(sandbox):
    """Team changes made in the sandbox reach HotDash only by a refresh."""
    sandbox.webhook.url, sandbox.webhook.sink = "", None
    return sandbox


def signed_in(client, github_sign_in, login: str):
    assert github_sign_in(client, login).status_code == 302
    return GitHubIdentity.objects.get(login=login).user


def role_of(user) -> str:
    return policy.highest_role(get_user_model().objects.get(pk=user.pk))


def api_status(client, raw_token: str) -> int:
    return client.get("/api/v1/deploys", HTTP_AUTHORIZATION=f"Bearer {raw_token}").status_code


def role_changes(user) -> list[dict]:
    events = AuditEvent.objects.filter(verb="user.role_changed", target_id=str(user.pk))
    return [dict(event.data, actor=event.actor_name) for event in events.order_by("id")]


def test_removal_takes_the_role_and_the_api_tokens_at_the_next_refresh(
    client, demo, quiet_sandbox, github_sign_in
):
    bob = signed_in(client, github_sign_in, "bob")
    _, raw = api_token_create(user=bob, name="ci")
    assert api_status(client, raw) == 200
    quiet_sandbox.team_remove("approvers", "bob")
    assert role_of(bob) == policy.APPROVER  # GitHub changed; HotDash has not looked yet

    assert github_roles_refresh_all() == 1
    assert role_of(bob) == "none"
    assert api_status(client, raw) == 401
    assert client.get("/approvals/").status_code == 403  # the session stays, the role does not
    [_, lost] = role_changes(bob)
    assert lost["from"] == "approver" and lost["to"] == "none"
    assert lost["team"] == "hotdash-demo/approvers" and lost["via"] == "refresh"
    assert lost["actor"] == "system" and lost["api_tokens_revoked"] == [raw[:10]]
    revoked = AuditEvent.objects.get(verb="api_token.revoked")
    assert revoked.actor_name == "system" and revoked.data["prefix"] == raw[:10]
    assert GitHubIdentity.objects.get(login="bob").teams == []


def test_a_move_to_a_lower_team_downgrades_and_names_the_team_left(
    client, demo, quiet_sandbox, github_sign_in
):
    bob = signed_in(client, github_sign_in, "bob")
    _, raw = api_token_create(user=bob, name="ci")
    quiet_sandbox.team_add("deployers", "bob")
    github_roles_refresh_all()
    assert role_of(bob) == policy.APPROVER  # still the highest team
    assert len(role_changes(bob)) == 1 and api_status(client, raw) == 200
    quiet_sandbox.team_remove("approvers", "bob")
    github_roles_refresh_all()
    assert role_of(bob) == policy.DEPLOYER
    last = role_changes(bob)[-1]
    assert (last["from"], last["to"], last["team"]) == (
        "approver",
        "deployer",
        "hotdash-demo/approvers",
    )
    assert last["teams"] == ["hotdash-demo/deployers"]
    assert api_status(client, raw) == 401  # issued under the higher role


def test_joining_a_higher_team_raises_the_role_and_names_it(
    client, demo, quiet_sandbox, github_sign_in
):
    alice = signed_in(client, github_sign_in, "alice")
    _, raw = api_token_create(user=alice, name="ci")
    quiet_sandbox.team_add("approvers", "alice")
    github_roles_refresh_all()
    assert role_of(alice) == policy.APPROVER
    last = role_changes(alice)[-1]
    assert (last["from"], last["to"], last["team"]) == (
        "deployer",
        "approver",
        "hotdash-demo/approvers",
    )
    assert last["api_tokens_revoked"] == [] and api_status(client, raw) == 200


def test_a_renamed_github_account_keeps_its_role_and_the_new_login_is_audited(
    client, demo, quiet_sandbox, github_sign_in
):
    bob = signed_in(client, github_sign_in, "bob")
    quiet_sandbox.user_rename("bob", "robert")

    assert github_roles_refresh_all() == 1
    assert role_of(bob) == policy.APPROVER
    identity = GitHubIdentity.objects.get(user=bob)
    assert identity.login == "robert" and identity.teams == ["hotdash-demo/approvers"]
    renamed = AuditEvent.objects.get(verb="user.github_login_changed")
    assert (renamed.data["from"], renamed.data["to"], renamed.data["via"]) == (
        "bob",
        "robert",
        "refresh",
    )
    assert renamed.actor_name == "system"
    quiet_sandbox.team_remove("approvers", "robert")  # the new login is the one asked about
    github_roles_refresh_all()
    assert role_of(bob) == "none"


def test_a_deleted_github_account_loses_its_role(client, demo, quiet_sandbox, github_sign_in):
    bob = signed_in(client, github_sign_in, "bob")
    identity = GitHubIdentity.objects.get(user=bob)
    identity.github_id += 1  # an id GitHub no longer knows: the account was deleted
    identity.save()
    github_roles_refresh_all()
    assert role_of(bob) == "none"
    assert role_changes(bob)[-1]["to"] == "none"


def test_a_membership_webhook_refreshes_the_person_at_once(
    client, demo, hooked_sandbox, process_deliveries, github_sign_in
):
    carol = signed_in(client, github_sign_in, "carol")
    hooked_sandbox.team_remove("approvers", "carol")
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED
    assert delivery.detail == "membership hotdash-demo/approvers: refreshed carol"
    assert role_of(carol) == "none"
    last = role_changes(carol)[-1]
    assert last["via"] == "membership webhook" and last["actor"] == "github"


def test_a_deleted_team_refreshes_everyone_who_held_a_role_through_it(
    client, demo, hooked_sandbox, process_deliveries, github_sign_in
):
    carol = signed_in(client, github_sign_in, "carol")
    client.logout()
    bob = signed_in(client, github_sign_in, "bob")
    alice = signed_in(client, github_sign_in, "alice")
    hooked_sandbox.team_delete("approvers")
    [delivery] = process_deliveries()
    assert delivery.detail == "team hotdash-demo/approvers: refreshed carol, bob"
    assert role_of(carol) == role_of(bob) == "none"
    assert role_of(alice) == policy.DEPLOYER
    assert role_changes(alice)[-1]["via"] == "sign-in"


def test_a_webhook_about_someone_who_never_signed_in_is_ignored(
    demo, hooked_sandbox, process_deliveries
):
    hooked_sandbox.team_remove("viewers", "dave")
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.IGNORED
    assert delivery.detail == "membership: nobody who signs in with GitHub"


def test_local_accounts_are_never_touched(client, demo, quiet_sandbox, github_sign_in):
    signed_in(client, github_sign_in, "bob")
    quiet_sandbox.team_remove("approvers", "bob")
    github_roles_refresh_all()
    local_bob = get_user_model().objects.get(username="bob")
    assert role_of(local_bob) == policy.APPROVER


def test_a_removed_mapping_removes_its_role_at_the_next_refresh(
    client, demo, quiet_sandbox, github_sign_in
):
    bob = signed_in(client, github_sign_in, "bob")
    GitHubTeamRole.objects.filter(team_slug="approvers").delete()
    github_roles_refresh_all()
    assert role_of(bob) == "none"
    assert role_changes(bob)[-1]["team"] == "hotdash-demo/approvers"


def test_the_highest_role_of_any_app_wins(client, demo, quiet_sandbox, github_sign_in):
    GitHubTeamRole.objects.filter(team_slug="deployers").update(role="viewer")
    alice = signed_in(client, github_sign_in, "alice")
    assert role_of(alice) == policy.VIEWER
    other = type(demo).objects.create(name="other", github_owner="o", github_repo="r", fly_org="o")
    GitHubTeamRole.objects.create(
        app=other, org="hotdash-demo", team_slug="deployers", role="deployer"
    )
    github_roles_refresh_all()
    assert role_of(alice) == policy.DEPLOYER


def test_unreadable_memberships_keep_roles_until_the_next_round(
    client, demo, quiet_sandbox, github_sign_in, caplog
):
    bob = signed_in(client, github_sign_in, "bob")
    quiet_sandbox.team_remove("approvers", "bob")
    # HotDash's token may not read the organisation (a permanent error: no retry loop here).
    quiet_sandbox.add_fault("status", service="github", path="/memberships/", status=403)
    assert github_roles_refresh_all() == 0
    assert role_of(bob) == policy.APPROVER
    assert "GitHub roles of bob not refreshed" in caplog.text
    quiet_sandbox.clear_faults()
    assert github_roles_refresh_all() == 1
    assert role_of(bob) == "none"


def test_beat_refreshes_on_the_configured_schedule():
    entry = django_settings.CELERY_BEAT_SCHEDULE["github-roles-refresh"]
    assert entry["schedule"] == float(django_settings.GITHUB_ROLES_REFRESH_SECONDS)
    assert entry["task"] == github_roles_refresh_all_task.name


def test_the_runbook_shows_the_mapping(client, demo, admin_user):
    demo.commit_authors_are_requesters = True
    demo.save(update_fields=["commit_authors_are_requesters"])
    client.force_login(admin_user)
    page = client.get("/ops/runbook/hot-dash/").content.decode()
    assert "hotdash-demo/approvers → approver" in page
    assert "hotdash-demo/viewers → viewer" in page
    assert "whoever wrote a commit of a release (by their GitHub account) may not approve" in page


def test_unused_tokens_stay_revoked(client, demo, quiet_sandbox, github_sign_in):
    bob = signed_in(client, github_sign_in, "bob")
    api_token_create(user=bob, name="ci")
    quiet_sandbox.team_remove("approvers", "bob")
    github_roles_refresh_all()
    quiet_sandbox.team_add("approvers", "bob")
    github_roles_refresh_all()
    assert role_of(bob) == policy.APPROVER
    assert ApiToken.objects.get(user=bob).revoked_at is not None  # a new one must be made


def test_the_admin_role_from_a_team_opens_the_django_admin_and_losing_it_closes_it(
    client, demo, quiet_sandbox, github_sign_in
):
    admin = signed_in(client, github_sign_in, "admin")  # in the admins team
    assert role_of(admin) == policy.ADMIN
    assert client.get("/admin/deployments/app/").status_code == 200
    [granted] = role_changes(admin)
    assert granted["to"] == "admin" and granted["django_admin"] is True

    quiet_sandbox.team_remove("admins", "admin")
    github_roles_refresh_all()

    admin.refresh_from_db()
    assert not admin.is_staff and not admin.is_superuser
    assert role_of(admin) == "none"  # a superuser would still count as an admin
    assert client.get("/admin/deployments/app/").status_code == 302
    [_, lost] = role_changes(admin)
    assert lost["from"] == "admin" and lost["django_admin"] is False
