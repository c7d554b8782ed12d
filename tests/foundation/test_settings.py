"""Misconfiguration fails at start-up with a message that says what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def boot(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"}
    }
    clean.update({"DJANGO_SETTINGS_MODULE": "hotdash.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "false"}, "SECRET_KEY is required when DEBUG is off"),
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        (
            {"DEBUG": "true", "DATABASE_URL": "mysql://db/x"},
            "DATABASE_URL must start with sqlite:/// or postgres://",
        ),
        (
            {"DEBUG": "true", "DATABASE_URL": "postgres://host:5432/"},
            "DATABASE_URL must name a database",
        ),
        (
            {"DEBUG": "true", "REDIS_URL": "http://127.0.0.1:6379"},
            "REDIS_URL must be a URL starting with redis://",
        ),
        (
            {"DEBUG": "true", "EMAIL_URL": "mailto://ops@example.com"},
            "EMAIL_URL 'mailto://ops@example.com' must start with smtp://, smtps:// or console://.",
        ),
        (
            {"DEBUG": "true", "EMAIL_URL": "smtp://mailer:canary-pw@mail.example.com:99999"},
            "EMAIL_URL 'smtp://mailer:***@mail.example.com' has a port that is not a number",
        ),
        ({"DEBUG": "true", "EMAIL_URL": "smtp://:587/"}, "must name the mail server's host"),
        (
            {"DEBUG": "true", "EMAIL_URL": "smtp://mail.example.com/?tls=maybe"},
            "tls must be true or false; got 'maybe'",
        ),
        (
            {"DEBUG": "true", "EMAIL_URL": "smtp://mail.example.com/?ssl=true"},
            "takes only ?tls=true or ?tls=false; got 'ssl=true'",
        ),
        (
            {"DEBUG": "true", "EMAIL_URL": "console://", "EMAIL_HOST": "mail.example.com"},
            "Set EMAIL_URL or EMAIL_HOST, not both",
        ),
        ({"DEBUG": "true", "SANDBOX_PORT": "eighty"}, "SANDBOX_PORT must be an integer"),
        ({"DEBUG": "true", "HTTP_TIMEOUT_SECONDS": "0"}, "HTTP_TIMEOUT_SECONDS must be at least 1"),
        (
            {"SECRET_KEY": "x" * 50, "FLY_API_TOKEN": "t", "GITHUB_TOKEN": "t"},
            "AUDIT_HMAC_KEY is required",
        ),
    ],
)
def test_bad_settings_fail_loudly(env, message):
    result = boot(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    assert "canary-pw" not in result.stderr


def email_settings(email_url: str) -> list[str]:
    """The EMAIL_* settings Django ends up with for ``email_url``, as text."""
    names = "EMAIL_BACKEND EMAIL_HOST EMAIL_PORT EMAIL_HOST_USER EMAIL_HOST_PASSWORD"
    names += " EMAIL_USE_TLS EMAIL_USE_SSL"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            f"print(*(getattr(s, n) for n in {names.split()!r}), sep='|')",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "hotdash.settings", "EMAIL_URL": email_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split("|")


@pytest.mark.parametrize(
    ("email_url", "expected"),
    [
        (
            "smtp://mailer:p%40ss%2Fword@mail.example.com:2525/?tls=true",
            ["smtp", "mail.example.com", "2525", "mailer", "p@ss/word", "True", "False"],
        ),
        (
            "smtp://relay.internal",
            ["smtp", "relay.internal", "587", "", "", "False", "False"],
        ),
        (
            "smtps://mailer:secret@mail.example.com",
            ["smtp", "mail.example.com", "465", "mailer", "secret", "False", "True"],
        ),
        ("console://", ["console", "", "0", "", "", "False", "False"]),
    ],
)
def test_email_url_sets_the_email_settings(email_url, expected):
    backend, *rest = email_settings(email_url)
    assert [backend.removeprefix("django.core.mail.backends.").split(".")[0], *rest] == expected


def test_good_settings_boot_in_sandbox_mode():
    result = boot({"DEBUG": "true"})
    assert result.returncode == 0, result.stderr


def test_sandbox_mode_follows_tokens():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.SANDBOX_MODE, s.FLY_API_URL)",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "hotdash.settings",
            "SECRET_KEY": "k" * 50,
            "FLY_API_TOKEN": "a",
            "GITHUB_TOKEN": "b",
            "AUDIT_HMAC_KEY": "h",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["False", "https://api.machines.dev/v1"], result.stderr
