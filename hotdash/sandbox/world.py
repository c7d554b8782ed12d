"""The sandbox's state: a virtual clock, fault rules, the request log, and both simulated
services. Imports nothing of ours outside this package.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from . import demo
from .fly import FlyWorld
from .github import GitHubWorld, user
from .github_app import GitHubAppWorld
from .github_org import GitHubOrg

T = TypeVar("T")
DEFAULT_BASE_URL = "http://127.0.0.1:8001"  # where `make run` serves it

# Test worlds start a day after the last demo release, so demo timestamps are in the past.
DEMO_NOW = max(r.published_at for r in demo.DEMO_RELEASES) + timedelta(days=1)


class Clock:
    """Virtual time in epoch seconds.

    A frozen clock moves only when advanced (tests); a running clock follows the wall clock
    multiplied by ``speed`` (the ``sandbox`` command). Machine states are computed from it.
    """

    def __init__(self, *, start: float, speed: float = 1.0, frozen: bool = True) -> None:
        self.speed = speed
        self.frozen = frozen
        self._start = start
        self._offset = 0.0
        self._wall_start = time.monotonic()

    def now(self) -> float:
        running = 0.0 if self.frozen else (time.monotonic() - self._wall_start) * self.speed
        return self._start + running + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += max(0.0, seconds)

    def wait(self, seconds: float, condition: threading.Condition) -> None:
        """Let ``seconds`` of virtual time pass, releasing the world lock meanwhile."""
        if self.frozen:
            self.advance(seconds)
        else:
            condition.wait(seconds / self.speed)

    def iso(self, at: float | None = None) -> str:
        moment = datetime.fromtimestamp(self.now() if at is None else at, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


FAULT_KINDS = ("latency", "error", "status", "rate_limit", "hang", "lose", "drop", "drip")


@dataclass
class Fault:
    """One fault rule. Matches requests by service (fly/github/*), method and a path regex
    (searched in the path below the service prefix); ``times`` None means forever.

    Kinds: ``latency`` (add ``seconds`` of real delay), ``error`` (answer ``status`` with
    probability ``rate``), ``status`` (answer ``status``: e.g. a burst of N 503s),
    ``rate_limit`` (429, or 403 on GitHub with ``status=403``, with Retry-After ``retry_after``
    and/or ``x-ratelimit-remaining: 0`` + reset ``reset_in`` seconds ahead), ``hang`` (sleep
    ``seconds`` of real time, then answer normally), ``lose`` (apply the request, then answer
    502), ``drop`` (apply it, then close the connection without answering), ``drip`` (answer
    normally but send the body ``chunk`` bytes every ``seconds`` of real time).
    """

    kind: str
    service: str = "*"
    method: str = "*"
    path: str = ""
    times: int | None = None
    status: int = 503
    rate: float = 1.0
    seconds: float = 0.0
    chunk: int = 1
    retry_after: float | None = None
    reset_in: float | None = None
    id: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        re.compile(self.path)

    def matches(self, service: str, method: str, path: str) -> bool:
        return (
            (self.times is None or self.hits < self.times)
            and self.service in ("*", service)
            and self.method in ("*", method)
            and re.search(self.path, path) is not None
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RecordedRequest:
    service: str  # fly / github
    method: str
    path: str  # below the service prefix, e.g. /apps/hot-dash/machines
    query: dict[str, list[str]]
    status: int  # what the client was told; 0 when the connection was dropped
    at: float  # virtual time
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Webhook:
    """Where simulated GitHub events go. ``sink`` (tests) replaces the HTTP POST."""

    url: str = ""
    secret: str = ""
    sink: Callable[[dict[str, str], bytes], int] | None = None
    deliveries: list[dict[str, Any]] = field(default_factory=list)


class World:
    """Everything the sandbox knows. All access goes through ``lock``."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        rate_limits: bool = False,
        webhook: Webhook | None = None,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        self.base_url = base_url  # the sandbox's root, as webhook payloads name it
        self.lock = threading.Condition(threading.RLock())
        self.clock = clock or Clock(start=DEMO_NOW.timestamp())
        self.rng = random.Random(seed)
        self.seed = seed
        self.webhook = webhook or Webhook()
        self.hang_release = threading.Event()
        self._rate_limits = rate_limits
        self.github_app_registration: tuple[str, str] | None = None  # (public key, app id)
        self._populate()

    def _populate(self) -> None:
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        # What each Fly app's public health URL answers, when told to differ from a healthy
        # 200 at once: {app: {"status": int, "latency": seconds}}.
        self.app_health: dict[str, dict[str, float]] = {}
        self._fault_ids = 0
        self.fly = FlyWorld(self.clock, self.rng, self.lock, rate_limits=self._rate_limits)
        self.github = GitHubWorld(
            self.clock, self.rng, self.webhook, self.fly.register_image, f"{self.base_url}/github"
        )
        self.github_app = GitHubAppWorld(self.clock, self.github)
        if self.github_app_registration is not None:  # a reset keeps the App registered
            self.github_app.register(*self.github_app_registration)
        self.org = GitHubOrg(self.github, user)
        self.org.add_routes(self.github.router)

    def serve_at(self, root: str) -> None:
        """Name the root the sandbox is served at: webhook payloads' URLs point there."""
        with self.lock:
            self.base_url = root
            self.github.api_url = f"{root}/github"

    def reset(self) -> None:
        """Back to the demo world: faults, request log, machines, PRs, deliveries all cleared."""
        with self.lock:
            self.rng.seed(self.seed)
            self.webhook.deliveries.clear()
            self._populate()

    # --- faults --------------------------------------------------------------------------

    def add_fault(self, kind: str, **options: Any) -> Fault:
        """Install a fault rule (see :class:`Fault`) and return it."""
        with self.lock:
            self._fault_ids += 1
            fault = Fault(kind=kind, id=self._fault_ids, **options)
            self.faults.append(fault)
            return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def faults_for(self, service: str, method: str, path: str) -> list[Fault]:
        """The matching faults, one per kind; each counts as hit."""
        chosen: dict[str, Fault] = {}
        for fault in self.faults:
            if fault.kind not in chosen and fault.matches(service, method, path):
                if fault.kind == "error" and self.rng.random() >= fault.rate:
                    continue
                fault.hits += 1
                chosen[fault.kind] = fault
        return list(chosen.values())

    # --- time, health, limits ------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (machines boot, checks pass their grace period)."""
        with self.lock:
            self.clock.advance(seconds)
            self.lock.notify_all()

    def set_rate_limits(self, enabled: bool) -> None:
        with self.lock:
            self._rate_limits = enabled
            self.fly.rate_limits = enabled

    def fail_next_images(self, count: int) -> None:
        """The next ``count`` distinct images deployed (create or update) fail health checks."""
        with self.lock:
            self.fly.fail_next = count

    def mark_image(self, image: str, *, healthy: bool) -> None:
        """Make one image pass or fail health checks from now on."""
        with self.lock:
            self.fly.mark_image(image, healthy=healthy)

    def set_app_health(self, app: str, *, status: int = 200, latency: float = 0.0) -> dict:
        """What ``app``'s public health URL answers from now on (status, seconds of latency)."""
        with self.lock:
            if app not in self.fly.apps:
                raise KeyError(f"no Fly app {app!r}")
            self.app_health[app] = {"status": int(status), "latency": max(0.0, float(latency))}
            return dict(self.app_health[app])

    def app_health_of(self, app: str) -> dict[str, float] | None:
        """The answer of ``app``'s public health URL, or None for an app that does not exist."""
        with self.lock:
            if app not in self.fly.apps:
                return None
            return dict(self.app_health.get(app, {"status": 200, "latency": 0.0}))

    def edit_machine(self, machine_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Someone changes a machine's config by hand (as ``fly machine update`` would);
        returns the new config."""
        with self.lock:
            return self.fly.edit_machine(machine_id, changes)

    # --- GitHub activity (each queues webhooks, delivered once the lock is released) -----

    def _activity(self, action: Callable[[], T]) -> T:
        with self.lock:
            result = action()
        self.github.deliver_outbox()
        return result

    def open_pull(self, title: str, branch: str, **options: Any) -> dict[str, Any]:
        """Open a PR (see GitHubWorld.open_pull); delivers ``pull_request.opened``."""
        return self._activity(lambda: self.github.open_pull(title, branch, **options))

    def push_to_pull(
        self, number: int, message: str = "fix: address review", **options: Any
    ) -> dict[str, Any]:
        """Push a commit to a PR; delivers ``pull_request.synchronize``."""
        return self._activity(lambda: self.github.push_to_pull(number, message, **options))

    def close_pull(self, number: int, *, merge: bool = False) -> dict[str, Any]:
        """Close or merge a PR; delivers ``pull_request.closed`` (and ``push`` when merged)."""
        return self._activity(lambda: self.github.close_pull(number, merge=merge))

    def publish_release(self, version: str, **options: Any) -> dict[str, Any]:
        """Publish a release (see GitHubWorld.publish_release); delivers push and release."""
        return self._activity(lambda: self.github.publish_release(version, **options))

    def register_github_app(self, public_key: str, app_id: str) -> None:
        """Accept JWTs of the App ``app_id`` signed by the private key of ``public_key``."""
        with self.lock:
            self.github_app_registration = (public_key, app_id)
            self.github_app.register(public_key, app_id)

    def change_installation_repositories(
        self, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> None:
        """Add or remove repositories of the demo App installation; delivers
        ``installation_repositories``."""
        self._activity(
            lambda: self.github_app.change_repositories(add=add or (), remove=remove or ())
        )

    def set_repository_file(self, path: str, content: str | None) -> None:
        """Serve ``content`` as the repository's ``path`` at every ref (None: no such file)."""
        with self.lock:
            self.github.file_overrides[path] = None if content is None else content.encode()

    def set_check(
        self, ref: str, name: str, status: str = "completed", conclusion: str | None = "success"
    ) -> None:
        """Make a check run of a commit report ``status``/``conclusion``; a completed one
        delivers ``check_run.completed`` (and, once every run of the commit has completed,
        ``check_suite.completed`` and ``workflow_run.completed``)."""
        self._activity(lambda: self.github.set_check(ref, name, status, conclusion))

    # --- what the compliance sweep reads (each changes one thing it checks) ---------------

    def change_protection(self, **changes: Any) -> dict[str, Any] | None:
        """Change the default branch's protection (see GitHubWorld.change_protection)."""
        with self.lock:
            return self.github.change_protection(**changes)

    def set_security(self, **features: bool) -> dict[str, str]:
        """Turn ``secret_scanning`` or ``secret_scanning_push_protection`` on or off."""
        with self.lock:
            return self.github.set_security(**features)

    def add_secret_alert(self, secret: str, **options: Any) -> dict[str, Any]:
        """Secret scanning finds ``secret``: a new open alert (returned without the secret)."""
        with self.lock:
            return self.github.add_secret_scanning_alert(secret, **options)

    def resolve_secret_alert(self, number: int, resolution: str = "revoked") -> None:
        with self.lock:
            self.github.resolve_secret_scanning_alert(number, resolution)

    def age_secret(self, where: str, name: str, days: float) -> None:
        """Make a secret look last set ``days`` ago: ``where`` is "github" (an Actions
        secret) or a Fly app's name."""
        with self.lock:
            if where == "github":
                self.github.age_actions_secret(name, days)
            else:
                self.fly.age_secret(where, name, days)

    def change_machine(self, app: str, **changes: Any) -> dict[str, Any]:
        """Change a machine of a Fly app (see FlyWorld.change_machine)."""
        with self.lock:
            return self.fly.change_machine(app, **changes)

    def add_demo_fly_app(self, name: str, like: str = "production") -> None:
        """A Fly app like the demo's ``like`` environment (machines and secrets), e.g. for
        another app in HotDash."""
        with self.lock:
            self.fly.add_demo_app(name, like)

    # --- the GitHub organisation: its teams (each change delivers its webhook) ------------

    def team_add(self, team: str, login: str) -> dict[str, Any]:
        """Add ``login`` to ``team``; delivers ``membership.added``."""
        return self._activity(lambda: self.org.team_add(team, login))

    def team_remove(self, team: str, login: str) -> dict[str, Any]:
        """Remove ``login`` from ``team``; delivers ``membership.removed``."""
        return self._activity(lambda: self.org.team_remove(team, login))

    def team_delete(self, team: str) -> dict[str, Any]:
        """Delete ``team``; delivers ``team.deleted``."""
        return self._activity(lambda: self.org.team_delete(team))

    def user_rename(self, login: str, new_login: str) -> dict[str, Any]:
        """Rename a GitHub user; their id, teams and tokens follow."""
        with self.lock:
            return self.org.rename(login, new_login)

    # --- the request log -----------------------------------------------------------------

    def record(self, entry: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(entry)

    def calls(
        self, method: str | None = None, path: str | None = None, service: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests, filtered by exact method, path regex (full match) and service."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method)
                and (path is None or re.fullmatch(path, r.path))
                and (service is None or r.service == service)
            ]

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "now": self.clock.iso(),
                "fly": self.fly.summary(),
                "github": self.github.summary(),
                "teams": self.org.summary(),
                "faults": [f.as_dict() for f in self.faults],
                "rate_limits": self._rate_limits,
            }
