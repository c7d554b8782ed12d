"""Operational bookkeeping: worker heartbeats, and whether Fly and GitHub answer HotDash."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from deployments.models import App, WorkerHeartbeat
from hotdash.integrations import APIError, fly_client, github_client
from hotdash.integrations.http import RetryPolicy

# Each check is one cheap authenticated call, made at most once a minute (the Ops page asks).
UPSTREAM_CHECK_TTL_SECONDS = 60
UPSTREAM_CHECK_DEADLINE_SECONDS = 5.0
_CACHE_KEY = "ops:upstream-checks"


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """Note that ``hostname`` just executed a task. Not audited: it changes no deploy state."""
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )
    return heartbeat


@dataclass(frozen=True)
class UpstreamCheck:
    provider: str
    ok: bool
    detail: str  # a sentence: what answered and how, or why not
    checked_at: datetime


def _check(provider: str, call: Callable[[], object]) -> UpstreamCheck:
    started = time.monotonic()
    try:
        call()
    except APIError as exc:
        if exc.status in (401, 403):
            detail = f"Reachable, but the token was refused (HTTP {exc.status}): {exc.message}"
        elif exc.status is None:
            detail = f"Unreachable: {exc.message}"
        else:
            detail = f"Answered HTTP {exc.status}: {exc.message}"
        return UpstreamCheck(provider, ok=False, detail=detail, checked_at=timezone.now())
    elapsed = round((time.monotonic() - started) * 1000)
    detail = f"Reachable, token accepted ({elapsed} ms)."
    return UpstreamCheck(provider, ok=True, detail=detail, checked_at=timezone.now())


def upstream_checks() -> list[UpstreamCheck]:
    """Whether Fly and GitHub answer with HotDash's tokens: one authenticated read each (the
    first app's Fly organisation and GitHub repository), no retries, remembered for a minute
    so that a busy Ops page costs the providers nothing more."""
    cached = cache.get(_CACHE_KEY)
    if cached is not None:
        return cached
    app = App.objects.order_by("name").first()
    if app is None:
        now = timezone.now()
        checks = [
            UpstreamCheck(name, ok=False, detail="No app yet: nothing to ask.", checked_at=now)
            for name in ("Fly", "GitHub")
        ]
    else:
        options = {"retry": RetryPolicy(attempts=1), "deadline": UPSTREAM_CHECK_DEADLINE_SECONDS}
        with (
            fly_client(**options) as fly,
            github_client(app.github_owner, app.github_repo, **options) as github,
        ):
            checks = [
                _check("Fly", lambda: fly.list_apps(app.fly_org)),
                _check("GitHub", github.get_repository),
            ]
    cache.set(_CACHE_KEY, checks, UPSTREAM_CHECK_TTL_SECONDS)
    return checks
