"""Canary secrets driven through deploys, 401s, webhooks, 500s, error emails, debug logs,
audit payloads and notifications appear in no log, row, broker message, response or email."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from deployments.models import Deploy, Notification
from deployments.services.requests import deploy_request
from hotdash.celery import app as celery_app
from hotdash.integrations import PermanentAPIError, fly_client
from tests.engine.conftest import fast_health
from tests.engine.test_notifications import Receiver
from tests.engine.test_workers import run_sandbox_clock, wait_for, worker_env
from tests.security.canary import (
    SECRET_SETTINGS,
    broker_messages,
    canary_values,
    database_dump,
    leaks,
    task_messages,
)
from tests.webhooks.conftest import github_headers, sign

LOGGERS = ("httpx", "httpcore", "hotdash", "deployments", "approvals", "celery")


@pytest.fixture
def canaries(settings, caplog):
    values = canary_values()
    for name in SECRET_SETTINGS:
        setattr(settings, name, values[name])
    for name in ("", *LOGGERS):
        caplog.set_level(logging.DEBUG, logger=name or None)
    return values


@pytest.fixture
def canary_app(demo, canaries):
    """The demo app sends signed notifications to a real loopback receiver."""
    receiver = Receiver([])
    demo.notification_webhook_url = receiver.url
    demo.notification_webhook_secret = canaries["NOTIFICATION_WEBHOOK_SECRET"]
    demo.save()
    yield demo, receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def received_text(receiver: Receiver) -> str:
    return "\n".join(f"{headers}\n{body.decode()}" for headers, body in receiver.received)


def emails_text() -> str:
    return "\n".join(
        f"{m.subject}\n{m.body}\n" + "\n".join(str(a[0]) for a in m.alternatives)
        for m in mail.outbox
    )


def assert_no_canary(canaries: dict[str, str], sources: dict[str, str]) -> None:
    assert all(sources.values())  # every source was really read
    assert leaks(canaries, sources) == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_deploy_approved_over_http_and_run_by_a_worker_leaks_no_secret(
    client, canary_app, canaries, caplog, live_sandbox, requester, approver, start_worker
):
    app, receiver = canary_app
    celery_app.control.purge()  # messages earlier tests in this process left on the broker
    run_sandbox_clock(live_sandbox)
    production = fast_health(app.environments.get(name="production"))
    deploy = deploy_request(
        environment=production,
        release=app.releases.get(version="1.3.0"),
        requested_by=requester,
        reason="ship the audit export",
    )
    client.force_login(approver)
    response = client.post(
        reverse("approvals:decide", args=[deploy.approval_request.pk]),
        {"decision": "approve", "comment": "go"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    queued = task_messages()
    # Tasks receive ids, never tokens: the deploy's message names the deploy by its id (plus
    # its run fence and Fly app name); the canary check below covers every message.
    runs = [t["args"] for t in queued if t["task"] == "deployments.tasks.deploys.deploy_run"]
    assert [args[0] for args in runs] == [deploy.pk], queued
    before_worker = "\n".join(broker_messages())

    worker = start_worker(
        "canary",
        extra_env=worker_env(
            live_sandbox,
            SANDBOX_MODE="true",
            LOG_LEVEL="DEBUG",
            **{name: canaries[name] for name in SECRET_SETTINGS},
        ),
    )
    wait_for(
        lambda: Deploy.objects.get(pk=deploy.pk).is_terminal,
        timeout=120,
        reconcile=True,
        what="the worker to finish the deploy",
    )
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    wait_for(
        lambda: not Notification.objects.exclude(state=Notification.State.DELIVERED).exists(),
        timeout=60,
        what="the notifications to be delivered",
    )
    assert Notification.objects.filter(deploy=deploy).count() >= 2
    assert "deployments.tasks.deploys.deploy_run" in worker.log()  # the log is the worker's own

    assert_no_canary(
        canaries,
        {
            "worker log": worker.log(),
            "captured logs": caplog.text,
            "database": database_dump(canaries["NOTIFICATION_WEBHOOK_SECRET"]),
            "broker before the worker": before_worker,
            "broker after": "\n".join(broker_messages()) or "(empty)",
            "approval response": response.content.decode() + str(response.headers),
            "notifications received": received_text(receiver),
        },
    )


@pytest.mark.django_db
def test_401s_webhooks_500s_error_emails_and_debug_logs_leak_no_secret(
    client, demo, canaries, caplog, live_sandbox, viewer, settings
):
    production = demo.environments.get(name="production")
    machines_url = reverse("deployments:environment-machines", args=[production.pk])
    client.force_login(viewer)
    responses = {"machines": client.get(machines_url)}
    assert responses["machines"].status_code == 200

    # A 401 from Fly, through the page and through the client.
    live_sandbox.add_fault("status", service="fly", status=401, times=2)
    responses["machines after a 401"] = client.get(machines_url)
    assert "Could not ask Fly for the machines" in responses["machines after a 401"].text
    with pytest.raises(PermanentAPIError) as unauthorized, fly_client() as fly:
        fly.list_machines(production.fly_app_name)
    assert unauthorized.value.status == 401
    logging.getLogger("hotdash.integrations").exception("canary probe: %s", unauthorized.value)
    # httpx/httpcore DEBUG lines were really captured (headers are sent on every request).
    assert "send_request_headers" in caplog.text and "HTTP Request" in caplog.text

    # Webhook deliveries: one signed with the secret, one with a wrong signature.
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()

    for name, signature in (
        ("signed webhook", sign(body, canaries["GITHUB_WEBHOOK_SECRET"])),
        ("badly signed webhook", sign(body, "not-the-secret")),
    ):
        responses[name] = client.post(
            "/webhooks/github",
            data=body,
            content_type="application/json",
            **github_headers("ping", f"canary-{name.replace(' ', '-')}", signature),
        )
    assert responses["signed webhook"].status_code < 300
    assert responses["badly signed webhook"].status_code in (401, 403)

    # An exception raised inside build_client, whose frame holds the token and its header.
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.FLY_API_URL = "http://[::1"
    quiet = Client(raise_request_exception=False)
    quiet.force_login(viewer)
    responses["500 page"] = quiet.get(machines_url, headers={"Authorization": "Bearer x"})
    assert responses["500 page"].status_code == 500
    assert "Traceback" not in responses["500 page"].text
    assert "build_client" not in responses["500 page"].text
    assert len(mail.outbox) == 1 and "Internal Server Error" in mail.outbox[0].subject
    assert "build_client" in mail.outbox[0].body  # the report has the frame...
    assert "FLY_API_TOKEN = '********************'" in mail.outbox[0].body  # ...not the value
    loud = Client()
    loud.force_login(viewer)
    with pytest.raises(httpx.InvalidURL) as raised:
        loud.get(machines_url)
    report = ExceptionReporter(None, raised.type, raised.value, raised.tb, is_email=True)
    html = report.get_traceback_html()
    assert "build_client" in html
    assert "<td>token</td>" in html  # its frame variables are in the report

    assert_no_canary(
        canaries,
        {
            "captured logs": caplog.text,
            "database": database_dump(canaries["NOTIFICATION_WEBHOOK_SECRET"]),
            "emails": emails_text(),
            "HTML error report": html,
            "client error": str(unauthorized.value),
            **{
                f"{name} response": response.content.decode() + str(response.headers)
                for name, response in responses.items()
            },
        },
    )
