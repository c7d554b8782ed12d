"""Run the production recipe: the commands fly.toml names, as separate processes with
production settings, against a scratch PostgreSQL database and Redis database of their own
(not pytest's test database: these processes never see it).

The scratch services are derived from DATABASE_URL and REDIS_URL. Under CI=true a missing or
unreachable one fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from tests.engine.test_workers import free_port, run_sandbox_clock

ROOT = Path(__file__).resolve().parents[2]
FLY_TOML = tomllib.loads((ROOT / "fly.toml").read_text())
# The public name, as the TLS proxy in front would pass it on.
PUBLIC_HOST = "hotdash.example.test"
# A Redis database the suite's own runs never use (CI's REDIS_URL uses 15).
SCRATCH_REDIS_DB = 14
STOP_TIMEOUT = 60  # seconds a process may take to exit after SIGTERM


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
    pytest.skip(reason)


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A fresh PostgreSQL database beside DATABASE_URL's; dropped afterwards."""
    base = urlsplit(os.environ.get("DATABASE_URL", ""))
    if base.scheme not in {"postgres", "postgresql"}:
        unavailable("the production recipe needs DATABASE_URL=postgres://…")
    name = f"{base.path.lstrip('/')}_production"
    admin = {
        "host": base.hostname or "127.0.0.1",
        "port": base.port or 5432,
        "user": base.username or "postgres",
        "password": base.password or None,
        "dbname": "postgres",
        "autocommit": True,
        "connect_timeout": 5,
    }

    def run(sql: str) -> None:
        with psycopg.connect(**admin) as conn:
            conn.execute(sql)

    try:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        run(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable: {exc}")
    yield urlunsplit(base._replace(path=f"/{name}", query=""))
    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def scratch_redis() -> Iterator[str]:
    """REDIS_URL's server, database SCRATCH_REDIS_DB (13 if REDIS_URL uses 14), emptied."""
    base = urlsplit(os.environ.get("REDIS_URL", ""))
    if base.scheme not in {"redis", "rediss"}:
        unavailable("the production recipe needs REDIS_URL=redis://…")
    used = base.path.strip("/") or "0"
    db = SCRATCH_REDIS_DB if used != str(SCRATCH_REDIS_DB) else SCRATCH_REDIS_DB - 1
    url = urlunsplit(base._replace(path=f"/{db}"))
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        unavailable(f"Redis is not reachable: {exc}")
    yield url
    client.flushdb()
    client.close()


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.popen.poll() is None

    def terminate(self) -> None:
        """SIGTERM to the main process only, as the platform's stop does."""
        if self.running():
            self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running {timeout} s after SIGTERM:\n{self.log()[-3000:]}"
            ) from None

    def kill(self) -> None:
        if self.running():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)


@dataclass
class Recipe:
    """fly.toml's commands, run with ``env`` from the repository root."""

    env: dict[str, str]
    logs: Path
    sandbox: object
    url: str
    processes: list[Process] = field(default_factory=list)

    def run(self, command: str, *, timeout: float = 120) -> str:
        """Run a one-off command to completion (as `fly ssh console -C` would); its stdout."""
        result = subprocess.run(
            shlex.split(command),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, group: str, name: str) -> Process:
        """Start the command of fly.toml's process group ``group``."""
        log_path = self.logs / f"{name}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                shlex.split(FLY_TOML["processes"][group]),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def tails(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-2500:]}" for p in self.processes)


@pytest.fixture
def recipe(tmp_path, scratch_database, scratch_redis, live_sandbox) -> Iterator[Recipe]:
    """fly.toml's [env] plus the secrets it names, for loopback: the proxy in front is this
    test, so loopback is the trusted proxy; the sandbox stands in for Fly and GitHub."""
    run_sandbox_clock(live_sandbox)
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        **FLY_TOML["env"],
        # Substituted for this host: where to listen, the public name, the proxy's address.
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ALLOWED_HOSTS": PUBLIC_HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{PUBLIC_HOST}",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        # The secrets.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
        "DEMO_PASSWORD": secrets.token_urlsafe(16),
        "DATABASE_URL": scratch_database,
        "REDIS_URL": scratch_redis,
        "SANDBOX_MODE": "true",
        "FLY_API_URL": live_sandbox.fly_url,
        "GITHUB_API_URL": live_sandbox.github_url,
        # Runtime state and the collected static files, as the image lays them out.
        "HOTDASH_VAR_DIR": str(tmp_path / "var"),
        "STATIC_ROOT": str(tmp_path / "staticfiles"),
        # Short engine timings, so a rollout and its recovery take seconds.
        "DEPLOY_LEASE_SECONDS": "2",
        "DEPLOY_POLL_SECONDS": "1",
        "DEPLOY_QUEUE_POLL_SECONDS": "1",
        "DEPLOY_FLY_LEASE_SECONDS": "2",
        "DEPLOY_DISPATCH_GRACE_SECONDS": "0",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Recipe(env=env, logs=logs, sandbox=live_sandbox, url=f"http://127.0.0.1:{port}")
    yield running
    for process in running.processes:
        process.kill()
