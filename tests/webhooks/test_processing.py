"""The worker's side: the received audit event, dispatch by event, ignored and failed
deliveries, lost messages."""

from __future__ import annotations

import itertools
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from approvals.audit import verify
from approvals.models import AuditEvent
from deployments import task_names
from deployments.models import Build, WebhookDelivery
from deployments.services import webhooks as webhook_services
from deployments.services.webhooks import (
    DRAIN_FLAG,
    webhook_deliveries_drain,
    webhook_deliveries_resend_stuck,
    webhook_delivery_fail,
    webhook_delivery_process,
    webhook_delivery_receive,
    webhook_payloads_prune,
)
from deployments.tasks.webhooks import webhook_delivery_process_task
from hotdash import queue
from hotdash.celery import app as celery_app
from hotdash.integrations import RetryableAPIError
from tests.audit.writers import write_concurrently
from tests.fixtures import GITHUB_WEBHOOK_PAYLOADS
from tests.fixtures.messages import record_messages

REFERENCE = GITHUB_WEBHOOK_PAYLOADS


def reference(name: str) -> dict:
    return json.loads((REFERENCE / name).read_bytes())


def for_demo_repo(payload: dict) -> dict:
    payload["repository"] = {**payload["repository"], "full_name": "hotdash-demo/hot-dash"}
    return payload


def test_a_delivery_from_an_unknown_repository_is_ignored(db, post_delivery, process_deliveries):
    post_delivery("pull_request", reference("pull_request.opened.payload.json"))
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.IGNORED
    assert delivery.detail == "unknown repository"
    assert AuditEvent.objects.filter(verb="webhook.ignored").count() == 1


@pytest.mark.parametrize(
    "name", ["pull_request.converted_to_draft.payload.json", "pull_request.labeled.payload.json"]
)
def test_actions_without_work_are_ignored(demo, post_delivery, process_deliveries, name):
    post_delivery("pull_request", for_demo_repo(reference(name)))
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.IGNORED
    assert delivery.detail.startswith("pull_request.")


def test_a_signed_but_malformed_payload_fails_with_a_reason(
    demo, post_delivery, process_deliveries
):
    payload = for_demo_repo(reference("pull_request.opened.payload.json"))
    del payload["pull_request"]
    post_delivery("pull_request", payload)
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.FAILED
    assert delivery.detail.startswith("malformed payload")


def test_release_deliveries_go_to_the_release_handler(demo, post_delivery, process_deliveries):
    payload = for_demo_repo(reference("release.published.payload.json"))
    payload["release"]["draft"] = True
    post_delivery("release", payload)
    [delivery] = process_deliveries()
    # The release owner's handler refuses drafts; the delivery records its reason.
    assert delivery.state == WebhookDelivery.State.IGNORED
    assert "draft" in delivery.detail


def test_push_outside_sandbox_mode_is_ignored(demo, post_delivery, process_deliveries, settings):
    settings.SANDBOX_MODE = False
    post_delivery("push", for_demo_repo(reference("push.payload.json")))
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.IGNORED
    assert "CI" in delivery.detail
    assert not Build.objects.filter(commit_sha=reference("push.payload.json")["after"]).exists()


def test_processing_twice_does_nothing_the_second_time(db, post_delivery, process_deliveries):
    post_delivery("push", reference("push.payload.json"))
    [delivery] = process_deliveries()
    again = webhook_delivery_process(delivery_pk=delivery.pk)
    assert again.state == delivery.state and again.processed_at == delivery.processed_at
    assert AuditEvent.objects.filter(verb__in=["webhook.ignored", "webhook.processed"]).count() == 1


def test_deliveries_whose_message_was_lost_are_sent_again(db, post_delivery, settings):
    post_delivery("push", reference("push.payload.json"), delivery_id="lost")
    post_delivery("push", reference("push.payload.json"), delivery_id="recent")
    settings.WEBHOOK_STUCK_AFTER_SECONDS = 300
    WebhookDelivery.objects.filter(delivery_id="lost").update(
        received_at=timezone.now() - timedelta(minutes=10)
    )
    lost = WebhookDelivery.objects.get(delivery_id="lost")
    assert webhook_deliveries_resend_stuck() == [lost.pk]
    webhook_delivery_process(delivery_pk=lost.pk)
    assert webhook_deliveries_resend_stuck() == []


def test_old_finished_payloads_are_emptied_and_their_replay_still_refused(
    db, post_delivery, process_deliveries, settings
):
    from deployments.tasks.webhooks import webhook_payloads_prune_task

    assert webhook_payloads_prune_task.name in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    settings.WEBHOOK_PAYLOAD_RETENTION_DAYS = 30
    body = reference("push.payload.json")
    post_delivery("push", body, delivery_id="old")
    process_deliveries()
    post_delivery("push", body, delivery_id="old-unprocessed")
    post_delivery("push", body, delivery_id="recent")
    WebhookDelivery.objects.exclude(delivery_id="recent").update(
        received_at=timezone.now() - timedelta(days=31)
    )

    assert webhook_payloads_prune() == 1
    assert webhook_payloads_prune() == 0
    payloads = dict(WebhookDelivery.objects.values_list("delivery_id", "payload"))
    assert payloads["old"] == {}
    assert payloads["old-unprocessed"] and payloads["recent"]  # not finished / not old
    [pruned] = AuditEvent.objects.filter(verb="webhook.payloads_pruned")
    assert pruned.data == {"deliveries": 1, "older_than_days": 30}

    replay = post_delivery("push", body, delivery_id="old")
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"


def test_the_worker_records_received_with_what_the_endpoint_knew(
    demo, client, post_delivery, process_deliveries
):
    payload = for_demo_repo(reference("pull_request.labeled.payload.json"))
    client.defaults["REMOTE_ADDR"] = "203.0.113.9"
    before = AuditEvent.objects.count()
    post_delivery("pull_request", payload, delivery_id="d-audit")
    assert AuditEvent.objects.count() == before  # the endpoint takes no audit-chain lock

    process_deliveries()
    received, ignored = AuditEvent.objects.order_by("id")[before:]
    assert (received.verb, ignored.verb) == ("webhook.received", "webhook.ignored")
    assert received.actor_name == "github" and received.ip == "203.0.113.9"
    assert received.app_name == "hot-dash"
    assert received.data == {"event": "pull_request", "action": "labeled", "delivery_id": "d-audit"}
    assert received.target_id == str(WebhookDelivery.objects.get(delivery_id="d-audit").pk)


def test_a_delivery_given_up_before_processing_is_still_recorded_received(db, post_delivery):
    post_delivery("push", reference("push.payload.json"), delivery_id="d-crash")
    delivery = WebhookDelivery.objects.get(delivery_id="d-crash")
    webhook_delivery_fail(delivery_pk=delivery.pk, detail="RuntimeError: boom")
    webhook_delivery_process(delivery_pk=delivery.pk)
    verbs = list(AuditEvent.objects.order_by("id").values_list("verb", flat=True))
    assert verbs == ["webhook.received", "webhook.failed"]


def test_a_delivery_stored_while_the_broker_is_down_is_processed_after_the_resend_beat(
    db, post_delivery, monkeypatch, settings, caplog, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(celery_app, "send_task", broker_down)
    with (
        caplog.at_level(logging.WARNING, logger="hotdash.queue"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post_delivery("push", reference("push.payload.json"), delivery_id="d-down")
    queue.coalesced_flush()  # the drain asked for on commit, at the end of the block
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get(delivery_id="d-down")
    assert f"could not publish {task_names.WEBHOOK_DELIVERIES_DRAIN}()" in caplog.text

    messages = record_messages(monkeypatch, task_names.WEBHOOK_DELIVERY_PROCESS)
    settings.WEBHOOK_STUCK_AFTER_SECONDS = 300
    assert webhook_deliveries_resend_stuck(now=delivery.received_at + timedelta(seconds=299)) == []
    later = delivery.received_at + timedelta(seconds=301)
    assert webhook_deliveries_resend_stuck(now=later) == [delivery.pk]
    assert messages == [[delivery.pk]]

    webhook_delivery_process_task.apply(args=messages[0])
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.IGNORED
    verbs = list(AuditEvent.objects.order_by("id").values_list("verb", flat=True))
    assert verbs == ["webhook.received", "webhook.ignored"]


@pytest.mark.skipif(
    not django_settings.REDIS_URL, reason="the drain flag lives in Redis (REDIS_URL)"
)
def test_a_burst_sends_one_drain_and_a_delivery_after_the_drain_sends_another(
    db, post_delivery, monkeypatch, django_capture_on_commit_callbacks
):
    drains = record_messages(monkeypatch, task_names.WEBHOOK_DELIVERIES_DRAIN)
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            post_delivery("push", reference("push.payload.json"), delivery_id=f"burst-{n}")
    queue.coalesced_flush()
    assert drains == [[]]
    assert webhook_deliveries_drain() == 5

    with django_capture_on_commit_callbacks(execute=True):
        post_delivery("push", reference("push.payload.json"), delivery_id="after-the-drain")
    queue.coalesced_flush()
    assert drains == [[], []]
    assert webhook_deliveries_drain() == 1
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"ignored"}
    assert AuditEvent.objects.filter(verb="webhook.received").count() == 6
    queue.coalesced_release(DRAIN_FLAG)


@pytest.mark.skipif(
    not django_settings.REDIS_URL, reason="the drain flag lives in Redis (REDIS_URL)"
)
@pytest.mark.parametrize(
    "stored", ["before the drain lets go", "after it lets go, before its last look", "after"]
)
def test_a_delivery_stored_while_the_drain_finishes_is_drained(
    db, monkeypatch, django_capture_on_commit_callbacks, stored
):
    drains = record_messages(monkeypatch, task_names.WEBHOOK_DELIVERIES_DRAIN)

    def store(delivery_id: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            webhook_delivery_receive(
                delivery_id=delivery_id,
                event="push",
                payload=reference("push.payload.json"),
                ip=None,
            )
        queue.coalesced_flush()  # its check in Redis made at this very point

    late: list[str] = []

    def store_late_once(when: str) -> None:
        if stored == when and not late:
            late.append("late")
            store("late")

    release = queue.coalesced_release

    def release_storing_a_delivery(flag: str) -> None:
        store_late_once("before the drain lets go")
        release(flag)
        store_late_once("after it lets go, before its last look")

    monkeypatch.setattr(queue, "coalesced_release", release_storing_a_delivery)
    store("first")
    assert drains == [[]]
    while drains:  # what the worker does with each message, until none is left
        drains.pop()
        webhook_deliveries_drain()
        store_late_once("after")
    states = dict(WebhookDelivery.objects.values_list("delivery_id", "state"))
    assert states == {"first": "ignored", "late": "ignored"}
    assert AuditEvent.objects.filter(verb="webhook.received").count() == 2
    queue.coalesced_release(DRAIN_FLAG)


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="coalesced only with Redis")
def test_a_burst_of_asks_makes_a_check_in_redis_every_few_milliseconds_not_one_each(
    monkeypatch,
):
    checks = []
    monkeypatch.setattr(queue, "send_coalesced", lambda task, **_: checks.append(task))
    for _ in range(1000):
        queue.send_coalesced_soon("tests.burst", flag="tests:burst", seconds=5)
    queue.coalesced_flush()
    assert 1 <= len(checks) <= 3


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="coalesced only with Redis")
def test_every_ask_from_any_thread_is_followed_by_a_check_without_a_flush(monkeypatch):
    order = itertools.count()
    checks: list[int] = []
    monkeypatch.setattr(queue, "send_coalesced", lambda task, **_: checks.append(next(order)))

    def ask(_: int) -> int:
        asked = next(order)
        queue.send_coalesced_soon("tests.threads", flag="tests:threads", seconds=5)
        return asked

    with ThreadPoolExecutor(max_workers=8) as pool:
        last_ask = max(pool.map(ask, range(2000)))
    deadline = time.monotonic() + 5
    while not (checks and checks[-1] > last_ask) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert checks[-1] > last_ask
    assert len(checks) < 2000


def test_the_drain_hands_a_retryable_delivery_to_its_own_task_and_fails_a_crashed_one(
    db, post_delivery, monkeypatch
):
    for delivery_id in ("later", "crash", "fine"):
        post_delivery("push", reference("push.payload.json"), delivery_id=delivery_id)
    dispatch = webhook_services._dispatch

    def flaky_dispatch(delivery, app):
        if delivery.delivery_id == "later":
            raise RetryableAPIError(
                "busy", provider="github", method="GET", path="/", status=503, retry_after=30
            )
        if delivery.delivery_id == "crash":
            raise RuntimeError("boom")
        return dispatch(delivery, app)

    monkeypatch.setattr(webhook_services, "_dispatch", flaky_dispatch)
    retries = record_messages(monkeypatch, task_names.WEBHOOK_DELIVERY_PROCESS)

    assert webhook_deliveries_drain() == 3
    states = dict(WebhookDelivery.objects.values_list("delivery_id", "state"))
    assert states == {"later": "received", "crash": "failed", "fine": "ignored"}
    assert retries == [[WebhookDelivery.objects.get(delivery_id="later").pk]]
    assert WebhookDelivery.objects.get(delivery_id="crash").detail == "RuntimeError: boom"


def _store(count: int, repositories: int) -> None:
    for n in range(count):
        payload = reference("push.payload.json")
        payload["repository"] = {
            **payload["repository"],
            "full_name": f"elsewhere/r{n % repositories}",
        }
        webhook_delivery_receive(
            delivery_id=f"batch-{n}", event="push", payload=payload, ip="192.0.2.1"
        )


def _audited_once_each(count: int) -> None:
    for verb in ("webhook.received", "webhook.ignored"):
        ids = AuditEvent.objects.filter(verb=verb).values_list("data__delivery_id", flat=True)
        assert sorted(ids) == sorted(f"batch-{n}" for n in range(count)), verb
    assert set(WebhookDelivery.objects.values_list("state", "received_audited")) == {
        ("ignored", True)
    }
    assert verify().ok


def test_a_drain_costs_a_few_queries_per_batch_not_per_delivery(db, django_assert_max_num_queries):
    _store(60, repositories=3)
    with django_assert_max_num_queries(30):  # one batch; a dozen per delivery before
        assert webhook_deliveries_drain() == 60
    _audited_once_each(60)
    received = AuditEvent.objects.filter(verb="webhook.received").order_by("id").first()
    assert (received.actor_name, received.ip, received.target_type) == (
        "github",
        "192.0.2.1",
        "webhookdelivery",
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_record_and_finish_each_delivery_once():
    _store(250, repositories=5)
    write_concurrently(lambda _worker: webhook_deliveries_drain(), writers=3)
    _audited_once_each(250)
