"""Injection through user text: a reason, comment or name cannot ping a
Slack channel or hide a link in a notification, nor forge a line in the logs."""

from __future__ import annotations

import io
import logging

import pytest
from django.conf import settings

from approvals.services import approval_decide
from deployments.models import App, Notification
from hotdash.security import SingleLineFormatter

FORGED = "\n2026-01-01 INFO approved by admin\r\x1b[2K"


def test_every_log_handler_writes_single_lines():
    config = settings.LOGGING
    assert config["handlers"]
    for name, handler in config["handlers"].items():
        formatter = config["formatters"][handler["formatter"]]
        assert formatter["()"] == "hotdash.security.SingleLineFormatter", name


def test_user_text_cannot_forge_a_log_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SingleLineFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("tests.security.injection")
    log.addHandler(handler)
    try:
        log.warning("deploy requested: reason=%s branch=%s", f"hotfix{FORGED}", "main\u2028x")
        try:
            raise ValueError(f"bad title {FORGED}")
        except ValueError:
            log.exception("refused")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "WARNING deploy requested: reason=hotfix\\n2026-01-01 INFO approved by admin\\r\\x1b[2K"
        " branch=main\\u2028x",
        lines[1],
    ]
    assert lines[1].startswith("ERROR refused\\nTraceback (most recent call last):\\n")
    assert lines[1].endswith(
        "ValueError: bad title \\n2026-01-01 INFO approved by admin\\r\\x1b[2K"
    )


@pytest.mark.django_db
def test_notification_text_shows_slack_markup_literally(request_deploy, production, approver):
    App.objects.filter(pk=production.app_id).update(
        notification_webhook_url="https://hooks.example.com/T/B/x",
        notification_webhook_secret="s" * 32,
    )
    deploy = request_deploy(reason="<!here> urgent, see <https://evil.example|the logs>")
    approval_decide(
        request=deploy.approval_request,
        user=approver,
        verdict="reject",
        comment="<!channel> & <@U123>",
    )
    webhooks = Notification.objects.filter(channel=Notification.Channel.WEBHOOK)
    requested = webhooks.get(event="approval.requested").payload
    rejected = webhooks.get(event="approval.rejected").payload
    expected = [
        (requested, "&lt;!here&gt; urgent, see &lt;https://evil.example|the logs&gt;"),
        (rejected, "&lt;!channel&gt; &amp; &lt;@U123&gt;"),
    ]
    for payload, escaped in expected:
        for text in (payload["text"], payload["blocks"][1]["text"]["text"]):
            assert escaped in text
            assert "<" not in text and ">" not in text
        for element in payload["blocks"][2]["elements"]:
            assert "<" not in element["text"]
