"""Outgoing webhook notifications: Slack-compatible JSON, HMAC-signed, retried and logged."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone

from approvals.services import approval_decide, approval_expire_due
from deployments import task_names
from deployments.models import Deploy, Notification
from deployments.services.notifications import (
    RESEND_AFTER_SECONDS,
    notification_deliver,
    notification_resend_stuck,
    notification_send,
)
from deployments.services.requests import deploy_request
from deployments.tasks.notifications import notification_deliver_task as deliver_task
from hotdash.celery import app as celery_app
from hotdash.errors import Refused
from tests.engine.conftest import make_deploy
from tests.engine.test_workers import free_port, wait_for
from tests.fixtures.messages import record_messages


def webhooks():
    """The webhook notifications (people are e-mailed too: tests/notifications/test_email.py)."""
    return Notification.objects.filter(channel=Notification.Channel.WEBHOOK)


class Receiver:
    """A real HTTP endpoint on a loopback port that answers the queued status codes (None:
    hold the request, unanswered, until ``release`` is set)."""

    def __init__(self, statuses: list[int | None]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status is None:
                    receiver.release.wait(timeout=60)
                    return
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                """Keep request lines out of the test output."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
        item.release.set()
        item.server.shutdown()
        item.server.server_close()


def signed_with(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-HotDash-Signature"], expected)


@pytest.fixture
def delivery_messages(monkeypatch) -> list[list]:
    """The args of every notification delivery message published, kept here instead of in
    the broker (where a later test's real worker would find them)."""
    return record_messages(monkeypatch, task_names.NOTIFICATION_DELIVER)


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

    assert notification_deliver(notification_id=notification.pk, attempt=1) == 2.0  # in 2 s
    assert notification_deliver(notification_id=notification.pk, attempt=1) is None  # again
    assert len(hook.received) == 1  # a duplicate message for a made attempt sends nothing
    assert notification_deliver(notification_id=notification.pk, attempt=2) is None

    notification.refresh_from_db()
    assert notification.state == Notification.State.DELIVERED
    assert notification.attempts == 2 and len(hook.received) == 2
    assert notification.next_attempt_at is None
    lines = notification.last_error.splitlines()
    assert lines[0].endswith("HTTP 500") and lines[1].endswith("delivered")
    headers, body = hook.received[-1]
    assert signed_with("s3cret-for-tests", headers, body)
    payload = json.loads(body)
    assert payload["text"].startswith("Deploy succeeded: hot-dash v1.3.0 → production")
    assert payload["blocks"][0]["type"] == "header"
    assert payload["deploy"]["id"] == deploy.pk
    assert "s3cret" not in notification.last_error + json.dumps(notification.payload)


def test_delivery_gives_up_after_the_maximum_attempts(
    demo, production, release_130, requester, receiver, settings
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    hook = receiver([503, 503, 503])
    demo.notification_webhook_url = hook.url
    demo.notification_webhook_secret = "s3cret-for-tests"
    demo.save()
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    notification = notification_send(deploy=deploy, event="deploy.failed")

    assert notification_deliver(notification_id=notification.pk, attempt=1) is not None
    assert notification_deliver(notification_id=notification.pk, attempt=2) is None

    notification.refresh_from_db()
    assert notification.state == Notification.State.FAILED
    assert notification.last_error.count("HTTP 503") == 2
    assert notification_deliver(notification_id=notification.pk, attempt=3) is None  # no third
    assert len(hook.received) == 2
    far = timezone.now() + timedelta(days=1)
    assert notification_resend_stuck(now=far) == []  # a failed row is not sent again


def test_no_signing_secret_means_not_sent_with_the_reason(
    demo, production, release_130, requester, receiver, caplog
):
    hook = receiver([])
    demo.notification_webhook_url = hook.url
    demo.notification_webhook_secret = ""
    demo.save()
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    notification = notification_send(deploy=deploy, event="deploy.succeeded")

    with caplog.at_level(logging.WARNING, logger="deployments.services.notifications"):
        assert deliver_task.apply(args=[notification.pk]).successful()

    notification.refresh_from_db()
    assert hook.received == []  # nothing signed with an empty key, nothing sent at all
    assert notification.state == Notification.State.FAILED
    assert notification.attempts == 0
    assert notification.last_error.endswith(
        "not sent: no signing secret configured for app hot-dash\n"
    )
    assert "no signing secret configured for app hot-dash" in caplog.text


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
    before = set(webhooks().values_list("pk", flat=True))
    received = len(hook.received)
    with django_capture_on_commit_callbacks() as callbacks:
        action()
    [notification] = webhooks().exclude(pk__in=before)
    assert notification.event == event
    assert callbacks  # its delivery is queued on commit, not before
    assert len(hook.received) == received

    deliver_task.apply(args=[notification.pk])

    notification.refresh_from_db()
    assert notification.state == Notification.State.DELIVERED
    [(headers, body)] = hook.received[received:]
    assert signed_with("approval-hook-secret", headers, body)
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
        # The second asks for what the first, queued, brings: it means it.
        return deploy_request(
            environment=production,
            release=release_130,
            requested_by=requester,
            reason="ship",
            confirm_no_op=True,
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
    assert webhooks().filter(event__startswith="approval.").count() == 6


def test_a_refused_decision_notifies_nothing(
    production, release_130, requester, approval_hook, django_capture_on_commit_callbacks
):
    deploy = deploy_request(
        environment=production, release=release_130, requested_by=requester, reason="ship"
    )
    with pytest.raises(Refused):
        approval_decide(request=deploy.approval_request, user=requester, verdict="approve")
    assert list(webhooks().values_list("event", flat=True)) == ["approval.requested"]


ENGINE_SECRET = "engine-hook-secret"


@pytest.fixture
def deploy_hook(demo, receiver):
    hook = receiver([])
    demo.notification_webhook_url = hook.url
    demo.notification_webhook_secret = ENGINE_SECRET
    demo.save()
    return hook


def deliver_published(messages: list[list]) -> None:
    """Run each published delivery message as a worker would, once."""
    for args in messages:
        assert deliver_task.apply(args=args).successful()
    messages.clear()


def received_events(hook) -> list[tuple[str, int]]:
    """(event, deploy id) of every POST ``hook`` received, each signed with ENGINE_SECRET."""
    events = []
    for headers, body in hook.received:
        assert signed_with(ENGINE_SECRET, headers, body)
        payload = json.loads(body)
        events.append((payload["event"], payload["deploy"]["id"]))
    return events


def test_a_deploy_that_succeeds_notifies_once_signed(
    production,
    release_130,
    requester,
    driver,
    deploy_hook,
    delivery_messages,
    django_capture_on_commit_callbacks,
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    with django_capture_on_commit_callbacks(execute=True):
        deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    [notification] = webhooks().all()
    assert delivery_messages == [[notification.pk, 1]]  # published on commit, attempt 1
    deliver_published(delivery_messages)
    assert received_events(deploy_hook) == [("deploy.succeeded", deploy.pk)]
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (Notification.State.DELIVERED, 1)


def test_a_failed_deploy_and_its_automatic_rollback_each_notify_once_signed(
    production,
    release_130,
    requester,
    sandbox,
    driver,
    deploy_hook,
    delivery_messages,
    django_capture_on_commit_callbacks,
):
    sandbox.mark_image(release_130.image_ref, healthy=False)
    deploy = make_deploy(production, release_130, requested_by=requester)
    with django_capture_on_commit_callbacks(execute=True):
        deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.FAILED
    rollback = Deploy.objects.get(rollback_of=deploy)
    assert len(delivery_messages) == 2
    deliver_published(delivery_messages)
    assert received_events(deploy_hook) == [
        ("deploy.failed", deploy.pk),
        ("deploy.auto_rolled_back", rollback.pk),
    ]
    failed, rolled_back = (json.loads(body) for _, body in deploy_hook.received)
    assert deploy.error in failed["text"]
    assert f"Rolling back deploy #{deploy.pk} to {rollback.image_ref}." in rolled_back["text"]

    with django_capture_on_commit_callbacks(execute=True):
        rollback = driver.run(rollback)

    assert rollback.state == Deploy.State.SUCCEEDED, rollback.error
    deliver_published(delivery_messages)
    assert received_events(deploy_hook)[2:] == [("deploy.succeeded", rollback.pk)]
    assert set(webhooks().values_list("state", "attempts")) == {(Notification.State.DELIVERED, 1)}


@pytest.fixture
def unreachable_broker():
    """Point this process's Celery producer at a port where no broker listens."""
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    celery_app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    celery_app.conf.broker_transport_options = {"socket_connect_timeout": 1, "max_retries": 1}
    celery_app._after_fork()  # drop pooled connections to the real broker
    yield
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved
    celery_app._after_fork()


def test_a_notification_lost_to_a_broker_outage_is_sent_by_the_sweep(
    production,
    release_130,
    requester,
    deploy_hook,
    caplog,
    monkeypatch,
    unreachable_broker,
    django_capture_on_commit_callbacks,
):
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    with (
        caplog.at_level(logging.WARNING, logger="hotdash.queue"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        notification = notification_send(deploy=deploy, event="deploy.succeeded")

    assert f"could not publish {task_names.NOTIFICATION_DELIVER}({notification.pk}, 1)" in (
        caplog.text
    )
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (Notification.State.PENDING, 0)
    messages = record_messages(monkeypatch, task_names.NOTIFICATION_DELIVER)
    due = notification.next_attempt_at
    with django_capture_on_commit_callbacks(execute=True):
        early = notification_resend_stuck(now=due + timedelta(seconds=RESEND_AFTER_SECONDS - 1))
        late = notification_resend_stuck(now=due + timedelta(seconds=RESEND_AFTER_SECONDS + 1))

    assert (early, late, messages) == ([], [notification.pk], [[notification.pk, 1]])
    deliver_published(messages)
    assert received_events(deploy_hook) == [("deploy.succeeded", deploy.pk)]
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (Notification.State.DELIVERED, 1)


def test_the_sweep_leaves_a_scheduled_retry_alone_and_never_sends_an_attempt_twice(
    demo,
    production,
    release_130,
    requester,
    receiver,
    delivery_messages,
    django_capture_on_commit_callbacks,
):
    hook = receiver([500, 200])
    demo.notification_webhook_url = hook.url
    demo.notification_webhook_secret = ENGINE_SECRET
    demo.save()
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    notification = notification_send(deploy=deploy, event="deploy.failed")
    assert notification_deliver(notification_id=notification.pk, attempt=1) == 2.0
    notification.refresh_from_db()
    due = notification.next_attempt_at  # when the retry message (attempt 2) is to run

    with django_capture_on_commit_callbacks(execute=True):
        waiting = notification_resend_stuck(now=due + timedelta(seconds=RESEND_AFTER_SECONDS))
        lost = notification_resend_stuck(now=due + timedelta(seconds=RESEND_AFTER_SECONDS + 1))

    assert (waiting, lost, delivery_messages) == ([], [notification.pk], [[notification.pk, 2]])
    # The sweep's message and the late original retry both arrive: one POST for attempt 2.
    deliver_task.apply(args=[notification.pk, 2])
    deliver_task.apply(args=[notification.pk, 2])
    assert len(hook.received) == 2
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (Notification.State.DELIVERED, 2)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("max_attempts", [6, 1])
def test_an_attempt_whose_worker_died_is_made_again_by_the_sweep_within_the_cap(
    demo, production, release_130, requester, receiver, start_worker, settings, max_attempts
):
    settings.NOTIFICATION_MAX_ATTEMPTS = max_attempts  # read by the sweep, in this process
    hook = receiver([None])  # the first POST is held unanswered
    demo.notification_webhook_url = hook.url
    demo.notification_webhook_secret = ENGINE_SECRET
    demo.save()
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    worker = start_worker("n1")
    with transaction.atomic():
        notification = notification_send(deploy=deploy, event="deploy.succeeded")

    wait_for(lambda: len(hook.received) == 1, timeout=60, what="the first attempt's POST")
    worker.kill()  # SIGKILL mid-attempt: the POST went out, its result is never written
    hook.release.set()
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (Notification.State.PENDING, 1)
    assert notification.last_error == ""
    lost_after = notification.next_attempt_at + timedelta(seconds=RESEND_AFTER_SECONDS + 1)

    if max_attempts == 1:
        assert notification_resend_stuck(now=lost_after) == []
        notification.refresh_from_db()
        assert notification.state == Notification.State.FAILED
        assert notification.last_error.endswith(": no result; its worker stopped\n")
        assert len(hook.received) == 1
        return
    start_worker("n2")
    assert notification_resend_stuck(now=lost_after) == [notification.pk]  # sent on commit
    wait_for(
        lambda: webhooks().get(pk=notification.pk).state != "pending",
        timeout=60,
        what="the second worker's attempt",
    )

    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (Notification.State.DELIVERED, 2)
    first, second = notification.last_error.splitlines()
    assert first.startswith("attempt 1 at ") and first.endswith(": no result; its worker stopped")
    assert second.startswith("attempt 2 at ") and second.endswith(": delivered")
    assert received_events(hook) == [("deploy.succeeded", deploy.pk)] * 2
