"""Outgoing webhook notifications: Slack-compatible JSON, HMAC-signed, retried and logged."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db import transaction

from approvals.services import ApprovalRefused, approval_decide, approval_expire_due
from deployments.models import Deploy, Notification
from deployments.services.notifications import notification_deliver, notification_send
from deployments.services.requests import deploy_request
from deployments.tasks.notifications import notification_deliver as deliver_task
from tests.engine.conftest import make_deploy


class Receiver:
    """A real HTTP endpoint on a loopback port that answers the queued status codes."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                """Keep request lines out of the test output."""

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for item in made:
        item.server.shutdown()
        item.server.server_close()


def test_a_notification_is_signed_slack_json_retried_until_delivered(
    demo, production, release_130, requester, receiver, settings
):
    hook = receiver([500, 200])
    demo.notification_webhook_url = hook.url
    demo.notification_webhook_secret = "s3cret-for-tests"
    demo.save()
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    with transaction.atomic():
        notification = notification_send(deploy=deploy, event="deploy.succeeded")

    assert notification_deliver(notification_id=notification.pk) == 2.0  # retry in 2 s
    assert notification_deliver(notification_id=notification.pk) is None

    notification.refresh_from_db()
    assert notification.state == Notification.State.DELIVERED
    assert notification.attempts == 2
    lines = notification.last_error.splitlines()
    assert lines[0].endswith("HTTP 500") and lines[1].endswith("delivered")
    headers, body = hook.received[-1]
    expected = hmac.new(b"s3cret-for-tests", body, hashlib.sha256).hexdigest()
    assert headers["X-HotDash-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["text"].startswith("Deploy succeeded: hot-dash v1.3.0 → production")
    assert payload["blocks"][0]["type"] == "header"
    assert payload["deploy"]["id"] == deploy.pk
    assert "s3cret" not in notification.last_error + json.dumps(notification.payload)


def test_delivery_gives_up_after_the_maximum_attempts(
    demo, production, release_130, requester, receiver, settings
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    demo.notification_webhook_url = receiver([503, 503, 503]).url
    demo.save()
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    notification = notification_send(deploy=deploy, event="deploy.failed")

    assert notification_deliver(notification_id=notification.pk) is not None
    assert notification_deliver(notification_id=notification.pk) is None

    notification.refresh_from_db()
    assert notification.state == Notification.State.FAILED
    assert notification.last_error.count("HTTP 503") == 2
    assert notification_deliver(notification_id=notification.pk) is None  # no third try


def test_no_webhook_configured_means_no_notification(production, release_130, requester):
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    assert notification_send(deploy=deploy, event="deploy.succeeded") is None
    with pytest.raises(ValueError, match="unknown notification event"):
        notification_send(deploy=deploy, event="deploy.exploded")


@pytest.fixture
def approval_hook(demo, receiver):
    hook = receiver([])
    demo.notification_webhook_url = hook.url
    demo.notification_webhook_secret = "approval-hook-secret"
    demo.save()
    return hook


def notified_once(hook, django_capture_on_commit_callbacks, event: str, action) -> dict:
    """Run ``action``; exactly one ``event`` notification is stored and, once its committed
    delivery task runs, exactly one signed POST reaches ``hook``. Returns its payload."""
    before = set(Notification.objects.values_list("pk", flat=True))
    received = len(hook.received)
    with django_capture_on_commit_callbacks() as callbacks:
        action()
    [notification] = Notification.objects.exclude(pk__in=before)
    assert notification.event == event
    assert callbacks  # its delivery is queued on commit, not before
    assert len(hook.received) == received

    deliver_task.apply(args=[notification.pk])

    notification.refresh_from_db()
    assert notification.state == Notification.State.DELIVERED
    [(headers, body)] = hook.received[received:]
    expected = hmac.new(b"approval-hook-secret", body, hashlib.sha256).hexdigest()
    assert headers["X-HotDash-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["event"] == event
    return payload


def test_approval_events_each_notify_once_signed(
    production,
    release_130,
    requester,
    approver,
    approval_hook,
    django_capture_on_commit_callbacks,
):
    def request():
        return deploy_request(
            environment=production, release=release_130, requested_by=requester, reason="ship"
        )

    made: list[Deploy] = []
    payload = notified_once(
        approval_hook,
        django_capture_on_commit_callbacks,
        "approval.requested",
        lambda: made.append(request()),
    )
    assert payload["text"].startswith("Approval requested: hot-dash v1.3.0 → production")
    assert "Needs 1 approval(s)" in payload["text"]

    payload = notified_once(
        approval_hook,
        django_capture_on_commit_callbacks,
        "approval.approved",
        lambda: approval_decide(
            request=made[-1].approval_request, user=approver, verdict="approve"
        ),
    )
    assert payload["deploy"]["state"] == Deploy.State.QUEUED
    assert "Approved by approver; queued." in payload["text"]

    rejected = request()
    payload = notified_once(
        approval_hook,
        django_capture_on_commit_callbacks,
        "approval.rejected",
        lambda: approval_decide(
            request=rejected.approval_request,
            user=approver,
            verdict="reject",
            comment="not during the sale",
        ),
    )
    assert "Rejected by approver: not during the sale" in payload["text"]

    expiring = request()
    due = expiring.approval_request.expires_at + timedelta(seconds=1)
    payload = notified_once(
        approval_hook,
        django_capture_on_commit_callbacks,
        "approval.expired",
        lambda: approval_expire_due(now=due),
    )
    assert payload["deploy"]["id"] == expiring.pk
    assert payload["deploy"]["state"] == Deploy.State.EXPIRED
    assert Notification.objects.filter(event__startswith="approval.").count() == 6


def test_a_refused_decision_notifies_nothing(
    production, release_130, requester, approval_hook, django_capture_on_commit_callbacks
):
    deploy = deploy_request(
        environment=production, release=release_130, requested_by=requester, reason="ship"
    )
    with pytest.raises(ApprovalRefused):
        approval_decide(request=deploy.approval_request, user=requester, verdict="approve")
    assert list(Notification.objects.values_list("event", flat=True)) == ["approval.requested"]
