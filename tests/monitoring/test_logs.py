"""Structured logs: JSON lines with the request/deploy/task context, redacted, one per line."""

from __future__ import annotations

import io
import json
import logging

import pytest
from celery import shared_task
from django.conf import settings as django_settings

from hotdash import logcontext
from hotdash.celery import carry_log_context
from hotdash.logcontext import ContextFilter, JsonFormatter
from hotdash.security import RedactSecretsFilter


@shared_task(name="tests.monitoring.log_context_echo")
def log_context_echo(deploy_id: int) -> dict:
    logging.getLogger("deployments.test").info("running deploy %s", deploy_id)
    return logcontext.current()


@pytest.fixture
def json_lines():
    """A handler configured as the console one is with LOG_FORMAT=json; returns a reader."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    for log_filter in (RedactSecretsFilter(), ContextFilter()):
        handler.addFilter(log_filter)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous)


def test_a_line_is_one_json_object_with_the_bound_fields(json_lines, settings):
    settings.FLY_API_TOKEN = "fly-canary-token-0123456789"
    with logcontext.bind(request_id="req-1", user="alice", deploy_id=7):
        logging.getLogger("deployments.x").warning(
            "line one\nforged line with %s", settings.FLY_API_TOKEN
        )
    [line] = json_lines()
    assert line["level"] == "WARNING" and line["logger"] == "deployments.x"
    assert line["message"] == "line one\nforged line with [redacted]"
    assert (line["request_id"], line["user"], line["deploy_id"]) == ("req-1", "alice", 7)
    assert "time" in line and "task_id" not in line


def test_the_email_url_password_is_redacted_in_either_spelling(json_lines, settings):
    """EMAIL_URL percent-encodes the password: the decoded one (EMAIL_HOST_PASSWORD) and the
    URL as written are both secrets."""
    settings.EMAIL_URL = "smtp://mailer:pa%40ss-canary@mail.example.com:587/?tls=true"
    settings.EMAIL_HOST_PASSWORD = "pa@ss-canary"
    log = logging.getLogger("deployments.x")
    log.warning("sending with %s", settings.EMAIL_URL)
    log.warning("login refused for %s", settings.EMAIL_HOST_PASSWORD)
    messages = [line["message"] for line in json_lines()]
    assert messages == ["sending with [redacted]", "login refused for [redacted]"]


def test_the_request_id_is_taken_or_made_and_echoed(client, db):
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given["X-Request-ID"] == "abc-123"
    made = client.get("/health", headers={"X-Request-ID": "bad id\nwith a line"})
    assert len(made["X-Request-ID"]) == 32 and made["X-Request-ID"] != "abc-123"


def test_a_task_message_carries_the_web_request_id_into_the_worker(json_lines):
    with logcontext.bind(request_id="req-from-web", user="bob"):
        headers: dict = {}
        carry_log_context(headers=headers)
        logging.getLogger("approvals.test").info("approved")
    assert logcontext.current() == {}
    result = log_context_echo.apply(args=[42], headers=headers, task_id="task-9")
    assert result.get() == {
        "request_id": "req-from-web",
        "user": "bob",
        "deploy_id": 42,
        "task_id": "task-9",
    }
    web, *worker = json_lines()  # the task's own line, then Celery's
    assert web["request_id"] == "req-from-web"
    assert worker and all(line["request_id"] == "req-from-web" for line in worker)
    assert (worker[0]["task_id"], worker[0]["deploy_id"]) == ("task-9", 42)
    assert logcontext.current() == {}


def test_a_message_sent_from_another_deploys_task_runs_with_its_own_deploy():
    """A run re-sending itself (or the engine sending another deploy's) carries a deploy in
    its context: the task's own deploy_id argument wins, and the task still runs bound."""
    with logcontext.bind(request_id="req-1", deploy_id=7):
        headers: dict = {}
        carry_log_context(headers=headers)
    result = log_context_echo.apply(args=[42], headers=headers, task_id="task-10")
    assert result.get() == {"request_id": "req-1", "deploy_id": 42, "task_id": "task-10"}


def test_the_format_follows_debug_unless_chosen():
    assert django_settings.LOG_FORMAT in ("json", "text")
    console = django_settings.LOGGING["handlers"]["console"]
    expected = "json" if django_settings.LOG_FORMAT == "json" else "single_line"
    assert console["formatter"] == expected
    assert "redact" in console["filters"] and "context" in console["filters"]
