"""The demo world shared by the sandbox and ``seed_demo``.

Everything here is deterministic so that the sandbox (which serves it over HTTP) and the
database seed (which records it) agree without talking to each other. Imports nothing of ours.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

APP_NAME = "hot-dash"
REPO_OWNER = "hotdash-demo"
REPO_NAME = "hot-dash"
FLY_ORG = "hotdash-demo"
VERSION_FILE = "package.json"
# The checks branch protection requires on the default branch (and CI runs on every commit).
REQUIRED_CHECKS = (
    "lint",
    "security",
    "build",
    "test-unit",
    "test-e2e",
    "test-a11y",
    "test-lighthouse",
    "ci-complete",
    "Gitleaks",
    "Docs Policy",
    "Danger",
    "AI Config Validation",
)
# A check CI runs without requiring it; it fails on the default branch's newest commit.
OPTIONAL_CHECK = "codecov/patch"
PRODUCTION_FLY_APP = "hot-dash"
STAGING_FLY_APP = "hot-dash-staging"
REGION = "ord"
# A label on an image that makes the sandbox fail its health checks.
BROKEN_IMAGE_LABEL = "hotdash.sandbox/health"
EPOCH = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def sha1_of(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class DemoCommit:
    sha: str
    message: str
    author: str


@dataclass(frozen=True)
class DemoRelease:
    version: str  # without the leading "v"
    prerelease: bool
    published_at: datetime
    commits: tuple[DemoCommit, ...]  # commits since the previous release, oldest first

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def commit_sha(self) -> str:
        return self.commits[-1].sha

    @property
    def artifact_name(self) -> str:
        return f"{APP_NAME}-{self.version}.tar.gz"

    @property
    def artifact_bytes(self) -> bytes:
        return f"{APP_NAME} {self.version} build artifact\n".encode() * 64

    @property
    def artifact_sha256(self) -> str:
        return sha256_of(self.artifact_bytes)

    @property
    def checksum_file(self) -> bytes:
        return f"{self.artifact_sha256}  {self.artifact_name}\n".encode()

    @property
    def image_ref(self) -> str:
        return f"registry.fly.io/{APP_NAME}:{self.tag}"

    @property
    def image_digest(self) -> str:
        return "sha256:" + sha256_of(f"image {self.image_ref}".encode())

    @property
    def changelog_lines(self) -> tuple[str, ...]:
        return tuple(commit.message for commit in self.commits)


def _commits(version: str, messages: list[tuple[str, str]]) -> tuple[DemoCommit, ...]:
    return tuple(
        DemoCommit(sha=sha1_of(f"{APP_NAME}:{version}:{index}"), message=message, author=author)
        for index, (message, author) in enumerate(messages)
    )


_HISTORY: list[tuple[str, bool, list[tuple[str, str]]]] = [
    (
        "1.0.0",
        False,
        [("feat: first public release (#1)", "alice"), ("chore: set up CI (#2)", "bob")],
    ),
    (
        "1.1.0",
        False,
        [("feat: release list page (#4)", "alice"), ("fix: time zones in logs (#5)", "carol")],
    ),
    ("1.1.1", False, [("fix: crash on empty changelog (#7)", "bob")]),
    (
        "1.2.0",
        False,
        [
            ("feat: approval drawer (#9)", "alice"),
            ("perf: cache overview query (#10)", "carol"),
            ("docs: explain rollbacks (#11)", "bob"),
        ],
    ),
    (
        "1.3.0-rc.1",
        True,
        [("feat: preview environments (#13)", "alice"), ("fix: lock banner wording (#14)", "bob")],
    ),
    (
        "1.3.0",
        False,
        [("fix: preview comment marker (#16)", "carol"), ("feat!: audit export (#17)", "alice")],
    ),
    # Newer than what staging runs: it has not had its staging rehearsal yet.
    ("1.3.1", False, [("fix: approval drawer focus on close (#19)", "bob")]),
]

DEMO_RELEASES: tuple[DemoRelease, ...] = tuple(
    DemoRelease(
        version=version,
        prerelease=prerelease,
        published_at=EPOCH + timedelta(days=7 * index),
        commits=_commits(version, messages),
    )
    for index, (version, prerelease, messages) in enumerate(_HISTORY)
)

# The default branch's newest commit: a docs change after the last release (not released).
MAIN_HEAD = DemoCommit(
    sha=sha1_of(f"{APP_NAME}:main:docs"), message="docs: how to run the demo locally", author="bob"
)
MAIN_HEAD_AT = DEMO_RELEASES[-1].published_at + timedelta(hours=6)

# Secrets as the demo starts, by how many days ago each was last set. FLY_API_TOKEN is past the
# default 90-day rotation period, so the compliance sweep reports it overdue.
ACTIONS_SECRET_AGES = {"FLY_API_TOKEN": 120, "HOTDASH_API_TOKEN": 30}
FLY_SECRETS = ("SECRET_KEY", "DATABASE_URL")
FLY_SECRET_AGE_DAYS = 20

# What runs on Fly when the demo starts.
LIVE_VERSIONS = {"production": "1.2.0", "staging": "1.3.0"}


def release(version: str) -> DemoRelease:
    for candidate in DEMO_RELEASES:
        if candidate.version == version:
            return candidate
    raise KeyError(version)


# What the demo Fly apps run on (shared by the sandbox's machines and the seeded environments).
FLY_APPS = {"production": PRODUCTION_FLY_APP, "staging": STAGING_FLY_APP}
MACHINE_COUNTS = {"production": 2, "staging": 1}
# Each environment's guest size, as its seeded Environment row declares it.
MACHINE_GUESTS = {
    "production": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 2048},
    "staging": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 2048},
}
INTERNAL_PORT = 8080
HEALTH_CHECK_PATH = "/health"
HEALTH_CHECK_GRACE = "10s"


def machine_config(version: str, environment: str) -> dict:
    """The Fly machine config of one demo machine running ``version`` in ``environment``."""
    demo = release(version)
    check_timing = {"interval": "15s", "timeout": "5s", "grace_period": HEALTH_CHECK_GRACE}
    return {
        "image": demo.image_ref,
        "env": {"PRIMARY_REGION": REGION, "FLY_PROCESS_GROUP": "app", "APP_ENV": environment},
        "guest": dict(MACHINE_GUESTS[environment]),
        "metadata": {
            "fly_platform_version": "v2",
            "fly_process_group": "app",
            "hotdash_version": version,
        },
        "services": [
            {
                "protocol": "tcp",
                "internal_port": INTERNAL_PORT,
                "autostart": True,
                # Legacy boolean form ("off"); the spec still types autostop as boolean.
                "autostop": False,
                "min_machines_running": 1,
                "concurrency": {"type": "requests", "soft_limit": 200, "hard_limit": 250},
                "ports": [
                    {"port": 80, "handlers": ["http"], "force_https": True},
                    {"port": 443, "handlers": ["tls", "http"]},
                ],
            }
        ],
        "checks": {
            "http": {
                "type": "http",
                "port": INTERNAL_PORT,
                "method": "GET",
                "path": HEALTH_CHECK_PATH,
                **check_timing,
            },
            "tcp": {"type": "tcp", "port": INTERNAL_PORT, **check_timing},
        },
        "restart": {"policy": "on-failure", "max_retries": 10},
        "stop_config": {"signal": "SIGINT", "timeout": "5s"},
    }


# The demo app's Fly configuration files, as its repository holds them at each release: the
# production file in the ``[[services]]`` shape, the default (staging) one in the
# ``[http_service]`` shape. The machines the sandbox starts with were launched from an older
# configuration (see machine_config), so they differ from these until HotDash rolls them out.
FLY_TOML_FILES = ("fly.production.toml", "fly.toml")


def fly_toml(path: str, version: str) -> str:
    """The text of ``path`` (one of FLY_TOML_FILES) at release ``version``; from 1.3.0 on,
    production machines get 4 GB of memory."""
    if path == "fly.production.toml":
        before = {r.version for r in DEMO_RELEASES[: DEMO_RELEASES.index(release("1.3.0"))]}
        memory = "2gb" if version in before else "4gb"
        return f"""# fly.toml app configuration file for production
app = "{PRODUCTION_FLY_APP}"
primary_region = "{REGION}"
kill_signal = "SIGINT"
kill_timeout = 30
console_command = "node repl.js"

[build]
  image = "registry.fly.io/{APP_NAME}:v{version}"

[deploy]
  strategy = "rolling"
  max_unavailable = 0.3
  release_command = "node migrate.js"

[env]
  NODE_ENV = "production"
  LOG_LEVEL = "info"

[processes]
  app = "node server.js"

[[services]]
  protocol = "tcp"
  internal_port = {INTERNAL_PORT}
  processes = ["app"]
  auto_stop_machines = "off"
  auto_start_machines = true
  min_machines_running = 2

  [services.concurrency]
    type = "requests"
    soft_limit = 200
    hard_limit = 250

  [[services.ports]]
    port = 80
    handlers = ["http"]
    force_https = true

  [[services.ports]]
    port = 443
    handlers = ["tls", "http"]

  [[services.tcp_checks]]
    interval = "15s"
    timeout = "2s"
    grace_period = "30s"

  [[services.http_checks]]
    interval = "30s"
    timeout = "5s"
    grace_period = "30s"
    method = "get"
    path = "{HEALTH_CHECK_PATH}"
    protocol = "http"

[[vm]]
  cpu_kind = "shared"
  cpus = 2
  memory = "{memory}"

[[restart]]
  policy = "on-failure"
  retries = 10
  processes = ["app"]

[[statics]]
  guest_path = "/app/public"
  url_prefix = "/static/"
"""
    if path == "fly.toml":
        return f"""# fly.toml app configuration file (staging)
app = "{STAGING_FLY_APP}"
primary_region = "{REGION}"
kill_timeout = "30s"

[env]
  NODE_ENV = "staging"

[http_service]
  internal_port = {INTERNAL_PORT}
  force_https = true
  auto_stop_machines = "stop"
  auto_start_machines = true
  min_machines_running = 0
  processes = ["app"]

  [http_service.concurrency]
    type = "requests"
    soft_limit = 80
    hard_limit = 100

  [[http_service.checks]]
    grace_period = "20s"
    interval = "30s"
    method = "GET"
    timeout = "5s"
    path = "{HEALTH_CHECK_PATH}"

[[vm]]
  size = "shared-cpu-2x"
  memory = "2gb"
"""
    raise KeyError(path)
