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
