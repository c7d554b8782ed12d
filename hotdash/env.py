"""Typed readers for environment variables. Bad values fail loudly at start-up."""

from __future__ import annotations

import os
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0, yes/no); got {raw!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ImproperlyConfigured(f"{name} must be a URL starting with {allowed}; got {value!r}.")
    return value.rstrip("/")


def database_from_url(url: str) -> dict[str, object]:
    """Turn DATABASE_URL (sqlite:///path or postgres://user:pass@host:port/name) into DATABASES."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
        if not path:
            raise ImproperlyConfigured(
                f"DATABASE_URL sqlite must look like sqlite:///path; got {url!r}."
            )
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    if parts.scheme in {"postgres", "postgresql"}:
        name = parts.path.lstrip("/")
        if not name:
            raise ImproperlyConfigured(f"DATABASE_URL must name a database; got {url!r}.")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": parts.username or "",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL must start with sqlite:/// or postgres://; got scheme {parts.scheme!r}."
    )


class EmailSettings(NamedTuple):
    backend: str
    host: str
    port: int
    user: str
    password: str
    use_tls: bool
    use_ssl: bool


_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def email_from_url(url: str) -> EmailSettings:
    """Turn EMAIL_URL into Django's EMAIL_* settings: ``smtp://user:pass@host:587/?tls=true``
    (STARTTLS only when asked), ``smtps://user:pass@host`` (TLS from the first byte, port 465
    by default) or ``console://`` (printed, for trying things out)."""
    parts = urlsplit(url)
    # The password stays out of every message: start-up errors end up in deploy logs.
    shown = (
        parts._replace(netloc=f"{parts.username}:***@{parts.hostname}") if parts.password else parts
    )
    problem = f"EMAIL_URL {shown.geturl()!r}"
    if parts.scheme == "console":
        return EmailSettings(
            "django.core.mail.backends.console.EmailBackend", "", 0, "", "", False, False
        )
    if parts.scheme not in {"smtp", "smtps"}:
        raise ImproperlyConfigured(f"{problem} must start with smtp://, smtps:// or console://.")
    if not parts.hostname:
        raise ImproperlyConfigured(f"{problem} must name the mail server's host.")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 587)
    except ValueError:
        raise ImproperlyConfigured(
            f"{problem} has a port that is not a number from 1 to 65535."
        ) from None
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - {"tls"}
    if unknown or (parts.scheme == "smtps" and options):
        allowed = "no options" if parts.scheme == "smtps" else "only ?tls=true or ?tls=false"
        raise ImproperlyConfigured(f"{problem} takes {allowed}; got {parts.query!r}.")
    tls = options.get("tls", "false").lower()
    if tls not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{problem}: tls must be true or false; got {tls!r}.")
    return EmailSettings(
        backend=_SMTP_BACKEND,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=tls in _TRUE,
        use_ssl=parts.scheme == "smtps",
    )
