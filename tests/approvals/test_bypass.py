"""A gate nobody can satisfy is stated (never a dead button, never an
auto-approve); an admin's break-glass bypass needs a reason and their password, queues the deploy
like a final approval, and is audited and notified; production can never need 0 approvals."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from approvals import policy
from approvals.models import ApprovalRequest, AuditEvent, Decision
from approvals.services import approval_decide
from deployments.models import Deploy, Environment, Notification

HTMX = {"HX-Request": "true"}
PASSWORD = "correct horse battery"  # tests/conftest.py make_user
NOBODY = "No eligible approver (requester excluded)"


@pytest.fixture
def hook(demo):
    demo.notification_webhook_url = "http://127.0.0.1:9/hook"
    demo.notification_webhook_secret = "s3cret"
    demo.save(update_fields=["notification_webhook_url", "notification_webhook_secret"])


@pytest.fixture
def lone_request(request_deploy, approver):
    """A production deploy requested by the only active approver (the demo's others are
    deactivated): self-approval is off, so nobody can approve it."""
    get_user_model().objects.exclude(pk=approver.pk).update(is_active=False)
    return request_deploy(requested_by=approver).approval_request


def bypass(client, approval, *, reason="prod is down, incident 7", password=PASSWORD, **extra):
    return client.post(
        reverse("approvals:bypass", args=[approval.pk]),
        {"reason": reason, "password": password},
        **extra,
    )


def assert_untouched(approval):
    approval.refresh_from_db()
    assert approval.state == ApprovalRequest.State.PENDING
    assert approval.deploy.state == Deploy.State.AWAITING_APPROVAL
    assert not AuditEvent.objects.filter(verb__in=["approval.bypassed", "deploy.queued"]).exists()
    assert not Notification.objects.filter(event="approval.bypassed").exists()


# --- unsatisfiable gates -----------------------------------------------------------------------


def test_a_gate_nobody_can_satisfy_is_stated_in_drawer_page_and_queue(
    client, lone_request, approver, viewer
):
    for user in (approver, viewer):
        client.force_login(user)
        drawer_url = reverse("approvals:drawer", args=[lone_request.pk])
        for html in (
            client.get(drawer_url, headers=HTMX).content.decode(),  # the drawer
            client.get(drawer_url).content.decode(),  # the page without JavaScript
            client.get(reverse("approvals:queue")).content.decode(),
        ):
            assert NOBODY in html
            assert 'value="approve"' not in html and "Still eligible" not in html
            assert 'id="bypass-form"' not in html  # nobody here is an admin
    # Stated, not acted on: the request waits for an admin (new approver or bypass).
    lone_request.refresh_from_db()
    assert lone_request.state == ApprovalRequest.State.PENDING
    assert lone_request.deploy.state == Deploy.State.AWAITING_APPROVAL
    assert not Decision.objects.exists()


def test_too_few_approvers_for_the_approvals_missing_is_stated_too(
    client, request_deploy, production, requester, approver, second_approver
):
    production.approvals_required = 2
    production.save(update_fields=["approvals_required"])
    get_user_model().objects.exclude(pk__in=[requester.pk, approver.pk]).update(is_active=False)
    approval = request_deploy().approval_request
    client.force_login(approver)
    html = client.get(reverse("approvals:drawer", args=[approval.pk])).content.decode()
    assert "Not enough eligible approvers (requester excluded): 2 more approvals needed, " in html
    assert "only 1 can still approve" in html
    # The one eligible approver's button is live: their approval counts if an approver is added.
    assert 'value="approve"' in html
    approval_decide(request=approval, user=approver, verdict="approve")
    html = client.get(reverse("approvals:queue")).content.decode()
    assert NOBODY in html


def test_a_satisfiable_gate_says_who_can_approve(client, pending, viewer):
    client.force_login(viewer)
    html = client.get(reverse("approvals:queue")).content.decode()
    assert "eligible for 1 more" in html and "No eligible approver" not in html


# --- break-glass bypass ------------------------------------------------------------------------


def test_an_admin_bypasses_with_reason_and_password(client, hook, lone_request, admin_user):
    client.force_login(admin_user)
    drawer_url = reverse("approvals:drawer", args=[lone_request.pk])
    html = client.get(drawer_url).content.decode()
    assert 'id="bypass-form"' in html and NOBODY not in html  # the admin can approve: eligible

    response = bypass(client, lone_request)

    assert response.status_code == 302 and response["Location"] == reverse("approvals:queue")
    lone_request.refresh_from_db()
    deploy = lone_request.deploy
    assert lone_request.state == ApprovalRequest.State.APPROVED
    assert deploy.state == Deploy.State.QUEUED and deploy.queued_at is not None
    assert not Decision.objects.exists()  # a bypass is not an approval
    event = AuditEvent.objects.get(verb="approval.bypassed")
    assert (event.actor_name, event.target_id) == ("root", str(lone_request.pk))
    assert event.data["reason"] == "prod is down, incident 7"
    assert (event.data["approvals"], event.data["required"], event.data["own_request"]) == (
        0,
        1,
        False,
    )
    assert AuditEvent.objects.filter(verb="deploy.queued", target_id=str(deploy.pk)).count() == 1
    notification = Notification.objects.get(event="approval.bypassed")
    assert notification.deploy_id == deploy.pk
    assert "Approval bypassed by root" in notification.payload["text"]
    assert "prod is down, incident 7" in notification.payload["text"]

    shown = "Approval bypassed by <strong>root</strong>"
    drawer = client.get(drawer_url, headers=HTMX).content.decode()
    assert shown in drawer and "prod is down, incident 7" in drawer
    assert 'id="bypass-form"' not in drawer  # closed: nothing left to bypass
    page = client.get(reverse("deployments:deploy-detail", args=[deploy.pk])).content.decode()
    assert "Approval bypassed by root: prod is down, incident 7" in page


def test_the_bypass_in_the_drawer_closes_it_like_a_decision(client, pending, admin_user):
    client.force_login(admin_user)
    response = bypass(client, pending, headers=HTMX)
    assert response.status_code == 200
    assert "approval-decided" in response["HX-Trigger"] and "bypass" in response["HX-Trigger"]
    assert "drawer-close" in response["HX-Trigger-After-Settle"]
    pending.refresh_from_db()
    assert pending.deploy.state == Deploy.State.QUEUED


def test_an_admin_may_bypass_their_own_request(client, request_deploy, admin_user):
    # Chosen like GitHub's admin bypass: break-glass is for the admin on call, who often asked
    # for the fix themselves; the reason, password, audit event and notification remain.
    approval = request_deploy(requested_by=admin_user).approval_request
    client.force_login(admin_user)
    assert bypass(client, approval).status_code == 302
    approval.refresh_from_db()
    assert approval.deploy.state == Deploy.State.QUEUED
    assert AuditEvent.objects.get(verb="approval.bypassed").data["own_request"] is True


def test_a_wrong_password_is_refused_audited_and_counted(client, lone_request, admin_user):
    client.force_login(admin_user)
    response = bypass(client, lone_request, password="guess", headers=HTMX)
    assert response.status_code == 403
    assert "not your password" in response.content.decode()
    assert "guess" not in response.content.decode()
    assert_untouched(lone_request)
    refused = AuditEvent.objects.get(verb="approval.refused")
    assert (refused.actor_name, refused.data["reason"], refused.data["verdict"]) == (
        "root",
        "reauth_failed",
        "bypass",
    )
    assert AuditEvent.objects.filter(verb="auth.login_failed", data__username="root").exists()
    assert "guess" not in str(list(AuditEvent.objects.values_list("data", flat=True)))


def test_repeated_wrong_passwords_lock_the_bypass_like_a_sign_in(client, lone_request, admin_user):
    client.force_login(admin_user)
    for _ in range(settings.LOGIN_THROTTLE_USERNAME_LIMIT):
        assert bypass(client, lone_request, password="guess").status_code == 403
    response = bypass(client, lone_request)  # the right password, too late
    assert response.status_code == 429 and response["Retry-After"]
    assert_untouched(lone_request)
    assert AuditEvent.objects.filter(verb="approval.refused", data__reason="throttled").exists()


def test_a_missing_reason_is_422_and_changes_nothing(client, lone_request, admin_user):
    client.force_login(admin_user)
    response = bypass(client, lone_request, reason="   ", headers=HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="decision-form">')
    assert "a reason is required" in html and '<details id="bypass" open>' in html
    assert_untouched(lone_request)


@pytest.mark.parametrize("role", ["approver", "viewer", "requester"])
def test_below_admin_there_is_no_bypass_form_and_a_post_is_403_audited(
    client, pending, request, role
):
    user = request.getfixturevalue(role)
    client.force_login(user)
    html = client.get(reverse("approvals:drawer", args=[pending.pk])).content.decode()
    assert 'id="bypass-form"' not in html
    assert bypass(client, pending, reason="").status_code == 403
    assert_untouched(pending)
    refused = AuditEvent.objects.get(verb="approval.refused")
    assert (refused.actor_name, refused.data["reason"]) == (user.username, "not_admin")


def test_bypass_disabled_for_the_environment(client, pending, production, admin_user):
    production.allow_approval_bypass = False
    production.save(update_fields=["allow_approval_bypass"])
    client.force_login(admin_user)
    html = client.get(reverse("approvals:drawer", args=[pending.pk])).content.decode()
    assert 'id="bypass-form"' not in html and 'value="approve"' in html
    assert bypass(client, pending).status_code == 403
    assert_untouched(pending)
    assert AuditEvent.objects.get(verb="approval.refused").data["reason"] == "bypass_disabled"


def test_bypass_needs_a_csrf_token_and_a_post(pending, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert bypass(client, pending).status_code == 403
    assert client.get(reverse("approvals:bypass", args=[pending.pk])).status_code == 405
    assert_untouched(pending)
    refused = AuditEvent.objects.get(verb="approval.refused")
    assert (refused.data["reason"], refused.target_id) == ("csrf", str(pending.pk))


def test_a_closed_request_cannot_be_bypassed(client, pending, approver, admin_user):
    approval_decide(request=pending, user=approver, verdict="reject", comment="not today")
    client.force_login(admin_user)
    assert bypass(client, pending).status_code == 409
    pending.refresh_from_db()
    assert pending.deploy.state == Deploy.State.REJECTED


# --- who counts as the requester -----------------------------------------------------------


def test_a_commit_author_in_the_release_may_approve_it(make_user, pending, v130):
    # Policy choice (approvals/policy.py approval_refusal): a local account carries no GitHub
    # identity, so it is never a release's commit author, even with the app's
    # commit_authors_are_requesters on (tests/github_accounts/test_four_eyes.py).
    authors = {
        entry["author"]
        for group in v130.changelog["groups"]
        for entry in group["entries"]
        if entry.get("author")
    }
    author = sorted(authors)[0]
    user_model = get_user_model()
    user = user_model.objects.filter(username=author).first() or make_user(author)
    user.groups.set([Group.objects.get(name=policy.APPROVER)])
    approval_decide(request=pending, user=user_model.objects.get(pk=user.pk), verdict="approve")
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.APPROVED


# --- the production floor ----------------------------------------------------------------------


def test_production_cannot_need_zero_approvals_in_the_database(production, staging):
    with pytest.raises(IntegrityError), transaction.atomic():
        Environment.objects.filter(pk=production.pk).update(approvals_required=0)
    production.refresh_from_db()
    assert production.approvals_required == 1
    Environment.objects.filter(pk=staging.pk).update(approvals_required=0)  # only production
    assert Environment._meta.get_field("approvals_required").default == 1


def test_the_admin_form_refuses_zero_approvals_for_production(client, production, demo):
    superuser = get_user_model().objects.get(username="admin")
    client.force_login(superuser)
    url = reverse("admin:deployments_environment_change", args=[production.pk])
    page = client.get(url).content.decode()
    assert 'name="allow_approval_bypass"' in page
    data = {key: value for key, value in model_to_dict(production).items() if value is not None}
    data.update(
        {
            "approvals_required": 0,
            "allow_approval_bypass": "",
            "freeze_windows-TOTAL_FORMS": 0,
            "freeze_windows-INITIAL_FORMS": 0,
        }
    )
    response = client.post(url, data)
    assert response.status_code == 200
    assert "A production environment needs at least 1 approval." in response.content.decode()
    production.refresh_from_db()
    assert production.approvals_required == 1
