"""A real SMTP conversation: an aiosmtpd server on a loopback port, with a login, receives what
HotDash sends when EMAIL_* or EMAIL_URL is set in the environment (the rest of the suite uses
Django's locmem backend)."""

from __future__ import annotations

import os
import subprocess
import sys
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from deployments.models import Notification
from deployments.services.notifications import notification_deliver
from tests.engine.test_workers import free_port

# Login without TLS, on loopback only: aiosmtpd warns, rightly, for any real server.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "hotdash-mailer", "mail-password-canary"


class Inbox:
    """Keeps each message the server accepts, and the logins it saw."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=inbox.authenticate,
        auth_require_tls=False,  # no certificate on a loopback test server
        auth_required=True,
    )
    controller.start()
    yield inbox, port
    controller.stop()


def email_variables(style: str, port: int) -> dict[str, str]:
    if style == "EMAIL_URL":
        return {"EMAIL_URL": f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}/?tls=false"}
    return {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "EMAIL_HOST_USER": USER,
        "EMAIL_HOST_PASSWORD": PASSWORD,
        "EMAIL_USE_TLS": "false",
    }


@pytest.mark.parametrize("style", ["EMAIL_HOST", "EMAIL_URL"])
def test_email_settings_from_the_environment_reach_a_real_smtp_server(smtp_server, style):
    inbox, port = smtp_server
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")},
        "DJANGO_SETTINGS_MODULE": "hotdash.settings",
        "DEBUG": "true",
        **email_variables(style, port),
        "DEFAULT_FROM_EMAIL": "hotdash@ops.example.com",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "sendtestemail", "ops@example.com"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    [(sender, recipients, content)] = inbox.messages
    assert (sender, recipients) == ("hotdash@ops.example.com", ["ops@example.com"])
    assert inbox.logins == [USER]
    assert message_from_bytes(content)["Subject"].startswith("Test email from")


def test_a_notification_email_is_delivered_over_smtp(smtp_server, settings, make_user):
    inbox, port = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = USER, PASSWORD
    user = make_user("ann", email="ann@example.com")
    email = Notification.objects.create(
        channel=Notification.Channel.EMAIL,
        recipient=user,
        dedup_key="deploy:1:deploy.succeeded",
        event="deploy.succeeded",
        payload={"subject": "Deploy succeeded: hot-dash v1.3.0", "body": "All machines healthy."},
    )
    assert notification_deliver(notification_id=email.pk, attempt=1) is None
    email.refresh_from_db()
    assert email.state == Notification.State.DELIVERED
    [(_, recipients, content)] = inbox.messages
    message = message_from_bytes(content)
    assert recipients == ["ann@example.com"]
    assert message["Subject"] == "Deploy succeeded: hot-dash v1.3.0"
    assert message.get_payload().strip() == "All machines healthy."
