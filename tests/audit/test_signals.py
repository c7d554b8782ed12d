"""Sign-in, sign-out, failed sign-in and admin configuration changes are audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from approvals.audit import verify
from approvals.models import AuditEvent

PASSWORD = "correct horse battery"


@pytest.fixture
def superuser(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


def test_sign_in_and_sign_out_are_audited(client, viewer):
    response = client.post(
        reverse("login"), {"username": "viewer", "password": PASSWORD}, REMOTE_ADDR="10.0.0.7"
    )
    assert response.status_code == 302
    login = AuditEvent.objects.get(verb="auth.login")
    assert (login.actor_user_id, login.actor_name, login.ip) == (viewer.pk, "viewer", "10.0.0.7")
    assert (login.target_type, login.target_id) == ("user", str(viewer.pk))

    client.post(reverse("logout"))
    logout = AuditEvent.objects.get(verb="auth.logout")
    assert logout.actor_name == "viewer" and logout.id == login.id + 1
    assert verify().ok


def test_a_failed_sign_in_records_the_username_and_never_the_password(client, viewer):
    response = client.post(
        reverse("login"), {"username": "viewer", "password": "hunter2-wrong"}, REMOTE_ADDR="::1"
    )
    assert response.status_code == 200
    event = AuditEvent.objects.get(verb="auth.login_failed")
    assert event.actor_type == "anonymous" and event.actor_user_id is None
    assert event.data == {"username": "viewer"}
    assert event.ip == "::1"
    stored = str(AuditEvent.objects.values().get(pk=event.pk))
    assert "hunter2" not in stored and "*****" not in stored
    assert not AuditEvent.objects.filter(verb="auth.login").exists()


def test_an_admin_change_is_audited_with_model_object_and_message(client, superuser):
    client.force_login(superuser)
    group = Group.objects.get(name="viewer")
    url = reverse("admin:auth_group_change", args=[group.pk])
    response = client.post(url, {"name": "auditors", "permissions": []})
    assert response.status_code == 302
    event = AuditEvent.objects.get(verb="admin.changed")
    assert event.actor_name == "root"
    assert (event.target_type, event.target_id, event.target_repr) == (
        "group",
        str(group.pk),
        "auditors",
    )
    assert event.data["model"] == "auth.group"
    assert event.data["change_message"] == "Changed Name."


def test_an_admin_change_records_the_client_address_of_that_request_only(client, superuser):
    from django.contrib.admin.models import CHANGE, LogEntry

    client.force_login(superuser)
    group = Group.objects.get(name="viewer")
    url = reverse("admin:auth_group_change", args=[group.pk])
    client.post(url, {"name": "auditors", "permissions": []}, REMOTE_ADDR="203.0.113.9")
    assert AuditEvent.objects.get(verb="admin.changed").ip == "203.0.113.9"

    client.get(reverse("approvals:audit"), REMOTE_ADDR="198.51.100.1")  # not an admin view
    LogEntry.objects.log_actions(superuser.pk, [group], CHANGE, change_message="from a shell")
    outside = AuditEvent.objects.filter(verb="admin.changed").latest("id")
    assert outside.data["change_message"] == "from a shell" and outside.ip is None
    assert verify().ok


def test_admin_additions_and_deletions_are_audited(client, superuser):
    client.force_login(superuser)
    client.post(reverse("admin:auth_group_add"), {"name": "contractors", "permissions": []})
    group = Group.objects.get(name="contractors")
    client.post(reverse("admin:auth_group_delete", args=[group.pk]), {"post": "yes"})
    assert not Group.objects.filter(name="contractors").exists()
    verbs = list(
        AuditEvent.objects.filter(verb__startswith="admin.")
        .order_by("id")
        .values_list("verb", "target_repr")
    )
    assert verbs == [("admin.added", "contractors"), ("admin.deleted", "contractors")]


def test_the_admin_cannot_edit_audit_events(client, superuser, events):
    client.force_login(superuser)
    changelist = reverse("admin:approvals_auditevent_changelist")
    assert client.get(changelist).status_code == 200
    change = reverse("admin:approvals_auditevent_change", args=[events[0].pk])
    response = client.post(change, {"verb": "deploy.cancelled"})
    assert response.status_code == 403
    assert client.get(reverse("admin:approvals_auditevent_add")).status_code == 403
    delete = reverse("admin:approvals_auditevent_delete", args=[events[0].pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get(pk=events[0].pk).verb == "deploy.requested"
