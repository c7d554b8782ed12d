"""E-mails to people: eligible approvers when a request opens and once at half its lifetime,
requesters when their deploy is decided or ends, each once per event and recipient, retried like
the webhook, and only for the events each person keeps on /profile/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import TestCase

from approvals.models import AuditEvent
from deployments.models import EmailPreference, Environment, Notification, Release
from deployments.services.notifications import (
    approval_reminders_send,
    email_preference_set,
    notification_deliver,
    notification_send,
)
from deployments.services.requests import deploy_request
from hotdash.errors import Refused
from tests.engine.test_workers import free_port

User = get_user_model()


def deliver_emails() -> list[tuple[str, str]]:
    """Run the first attempt of every pending e-mail; (address, subject) of what was sent."""
    mail.outbox.clear()
    pending = Notification.objects.filter(
        channel=Notification.Channel.EMAIL, state=Notification.State.PENDING, attempts=0
    )
    for pk in pending.order_by("pk").values_list("pk", flat=True):
        notification_deliver(notification_id=pk, attempt=1)
    return sorted((message.to[0], message.subject) for message in mail.outbox)


@pytest.fixture
def opened(demo, sandbox):
    """A production deploy by alice awaiting one approval; bob, carol and admin may decide."""
    with TestCase.captureOnCommitCallbacks(execute=False):
        deploy = deploy_request(
            environment=Environment.objects.get(app=demo, name="production"),
            release=Release.objects.get(app=demo, version="1.3.0"),
            requested_by=User.objects.get(username="alice"),
            reason="Ship the audit export",
        )
    return deploy.approval_request


def test_eligible_approvers_are_emailed_when_a_request_opens(opened):
    sent = deliver_emails()
    subject = f"Approval requested: hot-dash v1.3.0 → production (deploy #{opened.deploy_id})"
    # The requester alice (no self-approval here) and the viewer dave are not among them.
    assert sent == [
        ("admin@example.com", subject),
        ("bob@example.com", subject),
        ("carol@example.com", subject),
    ]
    body = mail.outbox[0].body
    assert "Needs 1 approval(s)" in body and "Ship the audit export" in body


def test_approvers_are_reminded_once_at_half_the_lifetime(opened, time_machine):
    deliver_emails()
    lifetime = opened.expires_at - opened.created_at
    User.objects.filter(username="carol").update(email="")  # no address: nothing for her

    time_machine.move_to(opened.created_at + lifetime / 2 - timedelta(seconds=1), tick=False)
    assert approval_reminders_send() == 0

    time_machine.move_to(opened.created_at + lifetime / 2, tick=False)
    assert approval_reminders_send() == 2
    assert approval_reminders_send() == 0  # the next minute's sweep: already reminded
    sent = deliver_emails()
    assert [address for address, _ in sent] == ["admin@example.com", "bob@example.com"]
    assert all(subject.startswith("Approval still waiting: hot-dash v1.3.0") for _, subject in sent)
    assert f"at {opened.expires_at:%Y-%m-%d %H:%M} UTC" in mail.outbox[0].body

    time_machine.move_to(opened.expires_at + timedelta(seconds=1), tick=False)
    assert approval_reminders_send() == 0  # expired: nobody is reminded of it


def test_an_approver_who_already_decided_is_not_reminded(demo, opened, time_machine):
    deliver_emails()
    opened.approvals_required = 2
    opened.save()
    opened.decisions.create(user=User.objects.get(username="bob"), verdict="approve")
    time_machine.move_to(opened.expires_at - timedelta(seconds=1), tick=False)
    assert approval_reminders_send() == 2
    assert [address for address, _ in deliver_emails()] == [
        "admin@example.com",
        "carol@example.com",
    ]


def test_an_event_announced_twice_is_emailed_once(opened):
    deliver_emails()
    deploy = opened.deploy
    with TestCase.captureOnCommitCallbacks(execute=False):
        notification_send(deploy=deploy, event="approval.approved")
        notification_send(deploy=deploy, event="approval.approved")
    subject = f"Approved: hot-dash v1.3.0 → production (deploy #{deploy.pk})"
    assert deliver_emails() == [("alice@example.com", subject)]


def test_a_failed_email_is_retried_then_given_up(opened, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 2
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    email = Notification.objects.filter(recipient__username="bob").get()
    assert notification_deliver(notification_id=email.pk, attempt=1) == 2.0
    email.refresh_from_db()
    assert email.state == Notification.State.PENDING and email.attempts == 1
    assert "attempt 1 at" in email.last_error and "ConnectionRefusedError" in email.last_error
    assert notification_deliver(notification_id=email.pk, attempt=1) is None  # a duplicate
    assert notification_deliver(notification_id=email.pk, attempt=2) is None
    email.refresh_from_db()
    assert email.state == Notification.State.FAILED and email.attempts == 2


def test_muted_events_are_not_emailed(demo, sandbox):
    bob = User.objects.get(username="bob")
    email_preference_set(user=bob, wanted=["approval.reminder"])
    with TestCase.captureOnCommitCallbacks(execute=False):
        deploy_request(
            environment=Environment.objects.get(app=demo, name="production"),
            release=Release.objects.get(app=demo, version="1.3.0"),
            requested_by=User.objects.get(username="alice"),
            reason="Ship it",
        )
    assert "bob@example.com" not in [address for address, _ in deliver_emails()]


def test_the_profile_page_saves_email_choices_and_audits_them(client, approver):
    approver.email = "ann@example.com"
    approver.save()
    client.force_login(approver)
    page = client.get("/profile/").content.decode()
    assert "Sent to <strong>ann@example.com</strong>" in page
    assert "My deploy succeeded" in page and "A deploy I may approve was requested" in page
    assert "An environment went down" not in page  # admins only
    assert page.count('type="checkbox"') == page.count("checked") == 8

    wanted = ["deploy.failed", "approval.requested"]
    response = client.post("/profile/email/", {"wanted": wanted})
    assert response.status_code == 302
    assert set(EmailPreference.objects.get(user=approver).muted_events) == {
        "approval.approved",
        "approval.rejected",
        "approval.expired",
        "deploy.succeeded",
        "deploy.auto_rolled_back",
        "approval.reminder",
    }
    event = AuditEvent.objects.get(verb="email_preferences.changed")
    assert event.actor_user_id == approver.pk and event.data["unmuted"] == []
    assert client.get("/profile/").content.decode().count("checked") == 2

    client.post("/profile/email/", {"wanted": wanted})  # no change: no second event
    assert AuditEvent.objects.filter(verb="email_preferences.changed").count() == 1


def test_an_event_outside_the_role_is_refused_with_a_sentence(client, requester):
    client.force_login(requester)
    response = client.post("/profile/email/", {"wanted": ["backup.failed"]})
    assert response.status_code == 422
    assert "Select a valid choice. backup.failed is not one of the available choices." in (
        response.content.decode()
    )
    assert not EmailPreference.objects.exists()
    with pytest.raises(Refused, match="not e-mail events you can choose: backup.failed"):
        email_preference_set(user=requester, wanted=["backup.failed"])


def test_a_viewer_is_offered_nothing(client, viewer):
    client.force_login(viewer)
    page = client.get("/profile/").content.decode()
    assert "Your role is told of nothing by e-mail." in page
    assert "no e-mail address" in page
