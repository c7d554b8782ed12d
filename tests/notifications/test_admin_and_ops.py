"""The app's webhook signing secret is write-only in the admin; recent notifications are listed
(host only, never the secret or the URL's path) on the Ops page for admins and in the admin."""

from __future__ import annotations

import json

import pytest
from django import forms
from django.urls import reverse

from approvals.models import AuditEvent
from deployments.models import App, Deploy, Notification
from deployments.services.notifications import notification_deliver, notification_send
from tests.engine.test_workers import free_port

SECRET = "old-signing-secret-value"


@pytest.fixture
def superuser(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def hooked(demo):
    demo.notification_webhook_url = "https://hooks.example.com/services/T0/B0/path-token"
    demo.notification_webhook_secret = SECRET
    demo.save()
    return demo


def change_form(client, app: App) -> tuple[str, dict[str, object]]:
    """The app's admin change page (as HTML) and the data its form would submit unchanged."""
    response = client.get(reverse("admin:deployments_app_change", args=[app.pk]))
    assert response.status_code == 200
    data: dict[str, object] = {}
    forms_shown = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:  # e.g. the GitHub team roles
        formset = inline.formset
        forms_shown += [formset.management_form, *formset.initial_forms]
    for bound in (bound for form in forms_shown for bound in form):
        value = bound.value()
        if isinstance(bound.field.widget, forms.MultiWidget):
            parts = bound.field.widget.decompress(value)
            data.update({f"{bound.html_name}_{i}": part for i, part in enumerate(parts)})
        elif isinstance(value, bool):
            if value:
                data[bound.html_name] = "on"
        elif value is not None:
            data[bound.html_name] = value
        if bound.field.show_hidden_initial:  # fields with a callable default, as rendered
            data[bound.html_initial_name] = value
    return response.content.decode(), data


def audited_changes() -> list[str]:
    return list(
        AuditEvent.objects.filter(verb="admin.changed", target_type="app")
        .order_by("id")
        .values_list("data__change_message", flat=True)
    )


def test_the_signing_secret_is_write_only_and_its_change_audited_without_the_value(
    client, hooked, superuser
):
    client.force_login(superuser)
    url = reverse("admin:deployments_app_change", args=[hooked.pk])
    html, data = change_form(client, hooked)
    assert 'type="password" name="notification_webhook_secret"' in html
    assert SECRET not in html and "A secret is set" in html
    assert "notification_webhook_secret" not in data  # nothing to submit back

    assert client.post(url, data).status_code == 302  # left blank: kept
    hooked.refresh_from_db()
    assert hooked.notification_webhook_secret == SECRET

    assert client.post(url, {**data, "notification_webhook_secret": " new-secret "}).status_code
    hooked.refresh_from_db()
    assert hooked.notification_webhook_secret == "new-secret"
    assert audited_changes() == ["No fields changed.", "Changed Notification webhook secret."]
    everything_audited = json.dumps(list(AuditEvent.objects.values("data", "target_repr")))
    assert "new-secret" not in everything_audited and SECRET not in everything_audited
    assert "new-secret" not in change_form(client, hooked)[0]


def test_a_webhook_without_a_signing_secret_is_refused_in_the_admin(client, demo, superuser):
    client.force_login(superuser)
    html, data = change_form(client, demo)
    assert "No secret is set" in html
    data["notification_webhook_url"] = "https://hooks.example.com/services/T0/B0/path-token"
    response = client.post(reverse("admin:deployments_app_change", args=[demo.pk]), data)
    assert response.status_code == 200
    assert "A webhook needs a signing secret" in response.content.decode()
    demo.refresh_from_db()
    assert demo.notification_webhook_url == "" and audited_changes() == []


@pytest.fixture
def failed_attempt(demo):
    """One notification whose attempt hit a closed loopback port (URL with credentials and a
    secret-bearing path)."""
    demo.notification_webhook_url = f"http://user:pw@127.0.0.1:{free_port()}/services/path-token"
    demo.notification_webhook_secret = SECRET
    demo.save()
    deploy = Deploy.objects.filter(environment__app=demo).first()
    notification = notification_send(deploy=deploy, event="deploy.failed")
    assert notification_deliver(notification_id=notification.pk, attempt=1) == 2.0
    notification.refresh_from_db()
    return notification


def test_ops_lists_recent_notifications_for_admins_with_the_host_only(
    client, failed_attempt, admin_user, viewer, settings
):
    settings.SANDBOX_MODE = True
    client.force_login(admin_user)
    html = client.get(reverse("ops")).content.decode()
    assert "Outgoing notifications" in html and "simulate the outside world" in html
    port = failed_attempt.app.notification_webhook_url.split(":")[3].split("/")[0]
    row = html[html.index('id="notifications"') :]
    for shown in ("deploy.failed", "hot-dash", f"127.0.0.1:{port}", "pending", "ConnectError"):
        assert shown in row
    assert failed_attempt.last_error.splitlines()[-1] in row
    for hidden in (SECRET, "path-token", "user:pw"):
        assert hidden not in html and hidden not in failed_attempt.last_error

    client.force_login(viewer)
    html = client.get(reverse("ops")).content.decode()
    assert "Outgoing notifications" not in html and "simulate the outside world" not in html


def test_the_admin_lists_notifications_read_only(client, failed_attempt, superuser):
    client.force_login(superuser)
    html = client.get(reverse("admin:deployments_notification_changelist")).content.decode()
    assert "deploy.failed" in html and "ConnectError" in html
    assert SECRET not in html and "path-token" not in html
    change = reverse("admin:deployments_notification_change", args=[failed_attempt.pk])
    detail = client.get(change)
    assert detail.status_code == 200 and SECRET not in detail.content.decode()
    assert client.post(change, {"state": "delivered"}).status_code == 403
    assert client.get(reverse("admin:deployments_notification_add")).status_code == 403
    failed_attempt.refresh_from_db()
    assert failed_attempt.state == Notification.State.PENDING
