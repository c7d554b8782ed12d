"""Production settings: Django's deploy check passes with a production
environment, and sandbox mode is never chosen silently when DEBUG is off."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tomllib

import pytest

from tests.foundation.test_settings import ROOT, boot

PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "hotdash.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://hotdash.example.com",
    "FLY_API_TOKEN": "FlyV1 fm2_" + secrets.token_urlsafe(24),
    "GITHUB_TOKEN": "ghp_" + secrets.token_urlsafe(24),
    "GITHUB_WEBHOOK_SECRET": secrets.token_urlsafe(32),
    "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SANDBOX_MODE"}}
    clean.update({"DJANGO_SETTINGS_MODULE": "hotdash.settings", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


# The shape of a key, not a key: only its framing is checked at start.
APP_KEY = "-----BEGIN RSA PRIVATE KEY-----\\nMIIE\\n-----END RSA PRIVATE KEY-----"


# fly.toml's [env] with the secrets it lists (docs/deploy.md), as a Fly machine gets them.
FLY_MACHINE = {
    **tomllib.loads((ROOT / "fly.toml").read_text())["env"],
    **{name: PRODUCTION[name] for name in PRODUCTION if name.endswith(("TOKEN", "SECRET", "KEY"))},
    "DATABASE_URL": "postgres://hotdash:secret@hotdash-db.flycast:5432/hotdash",
    "REDIS_URL": "redis://default:secret@fly-hotdash-broker.upstash.io:6379/0",
    "CACHE_URL": "redis://default:secret@fly-hotdash-cache.upstash.io:6379/0",
}


@pytest.mark.parametrize("production", [PRODUCTION, FLY_MACHINE], ids=["minimal", "fly.toml"])
def test_the_deploy_check_passes_with_production_settings(production):
    env = {**production, "SECRET_KEY": secrets.token_urlsafe(50)}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_deploy_check_fails_on_a_weak_production_setting():
    """The check above can fail: a short key and plain-HTTP cookies are reported."""
    env = {**PRODUCTION, "SECRET_KEY": "short", "SECURE_COOKIES": "false"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    for warning in ("security.W009", "security.W012", "security.W016"):
        assert warning in result.stderr


def settings_of(env: dict[str, str], *names: str) -> list[str]:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        f"print(*[repr(getattr(s, n, None)) for n in {list(names)!r}], sep='\\n')"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SANDBOX_MODE"}}
    clean.update({"DJANGO_SETTINGS_MODULE": "hotdash.settings", **env})
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_production_defaults_redirect_to_https_but_not_health():
    env = {**PRODUCTION, "SECRET_KEY": "k" * 50}
    assert settings_of(
        env,
        "SECURE_SSL_REDIRECT",
        "SECURE_REDIRECT_EXEMPT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
    ) == ["True", "['^health$']", "31536000", "False", "True", "True", "None"]
    behind_proxy = {**env, "TRUSTED_PROXIES": "fdaa::/16", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1"}
    assert settings_of(
        behind_proxy, "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_INCLUDE_SUBDOMAINS"
    ) == [
        "('HTTP_X_FORWARDED_PROTO', 'https')",
        "True",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "FLY_API_TOKEN and GITHUB_TOKEN must be set unless SANDBOX_MODE=true"),
        ({"FLY_API_TOKEN": "t"}, "GITHUB_TOKEN must be set unless SANDBOX_MODE=true"),
        ({"SANDBOX_MODE": "false", "DEBUG": "true"}, "FLY_API_TOKEN and GITHUB_TOKEN must be"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "TRUSTED_PROXIES must list IP addresses"),
        ({"GITHUB_APP_ID": "1"}, "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY must be set together"),
        (
            {"GITHUB_APP_ID": "my-app", "GITHUB_APP_PRIVATE_KEY": APP_KEY},
            "GITHUB_APP_ID must be the App's numeric id",
        ),
        (
            {"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "canary-not-a-key"},
            "GITHUB_APP_PRIVATE_KEY must be the App's private key in PEM format",
        ),
        (
            {"SANDBOX_MODE": "true", "REDIS_URL": "redis://r/0", "CACHE_URL": "redis://r/0"},
            "CACHE_URL must be a different Redis database from REDIS_URL",
        ),
    ],
)
def test_no_silent_sandbox_and_other_mistakes_fail_at_start(env, message):
    result = boot({"SECRET_KEY": "k" * 50, **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_sandbox_mode_outside_debug_only_when_asked_for():
    env = {"DEBUG": "false", "SECRET_KEY": "k" * 50, "SANDBOX_MODE": "true"}
    assert settings_of(env, "SANDBOX_MODE", "FLY_API_URL") == [
        "True",
        "'http://127.0.0.1:8001/fly/v1'",
    ]
    # What `make run` uses: DEBUG on, no tokens, sandbox by default.
    assert settings_of({"DEBUG": "true"}, "SANDBOX_MODE") == ["True"]
    assert settings_of({"DEBUG": "true", "CACHE_URL": "redis://127.0.0.1:6379/9"}, "CACHES") == [
        "{'default': {'BACKEND': 'django.core.cache.backends.redis.RedisCache', "
        "'LOCATION': 'redis://127.0.0.1:6379/9'}}"
    ]


def test_a_github_app_stands_in_for_the_personal_token():
    env = {
        **{k: v for k, v in PRODUCTION.items() if k != "GITHUB_TOKEN"},
        "SECRET_KEY": "k" * 50,
        "GITHUB_APP_ID": "1000001",
        "GITHUB_APP_PRIVATE_KEY": APP_KEY,
    }
    assert settings_of(env, "SANDBOX_MODE", "GITHUB_APP_ID") == ["False", "'1000001'"]
    pem = APP_KEY.replace("\\n", "\n")  # the "\n" escapes are read as line breaks
    assert pem.count("\n") == 2
    assert settings_of(env, "GITHUB_APP_PRIVATE_KEY") == [repr(pem)]
