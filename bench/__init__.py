"""Benchmarks (`make bench` = `python -m bench`), results in docs/benchmarks.md.

Adding one: write bench/<name>.py with a `run() -> str` returning a markdown section (use
`machine_markdown()` and `timings()` or `interleaved_timings()` below), and add "<name>" to
BENCHMARKS in bench/__main__.py. End the section with its headline figure, one line: it is
printed last. Honour ``quick()`` (`python -m bench --quick`): sizes small enough that
`make bench` runs every benchmark in a few minutes. Each benchmark runs in its own process on
its own PostgreSQL database, hotdash_<name>_bench (created and migrated for it), and its section in
docs/benchmarks.md is replaced on each run, leaving the other sections alone. Import Django
models inside run().
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def quick() -> bool:
    """True under `python -m bench --quick`: run at the small size."""
    return os.environ.get("BENCH_QUICK", "") == "true"


def machine_markdown() -> str:
    """One line naming the machine: cores, CPU model, RAM, Python and PostgreSQL versions."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        mem_kb = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return (
        f"Machine: {os.cpu_count()} cores ({subprocess.getoutput('nproc')} usable), {cpu}, "
        f"{mem_kb / 1024 / 1024:.0f} GiB RAM; Python {platform.python_version()}, "
        f"PostgreSQL {pg}; {time.strftime('%Y-%m-%d', time.gmtime())}; load average "
        f"{' / '.join(f'{load:.1f}' for load in os.getloadavg())} (1/5/15 min) when written "
        "(other processes on the machine inflate the tail latencies)."
    )


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p95_ms: float


def timings(call: Callable[[], object], *, runs: int = 200, warmup: int = 5) -> Timing:
    """Median and 95th percentile wall time of ``call`` over ``runs`` runs, in milliseconds."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return summary(samples)


def interleaved_timings(
    calls: list[Callable[[], object]], *, runs: int = 200, warmup: int = 5
) -> list[Timing]:
    """Like ``timings`` for several calls, taking turns (one run of each per round), so that
    load from other processes falls on every call alike and comparisons between them hold."""
    for call in calls:
        for _ in range(warmup):
            call()
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(runs):
        for call, times in zip(calls, samples, strict=True):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
    return [summary(times) for times in samples]


def summary(samples_ms: list[float]) -> Timing:
    """Median and 95th percentile (nearest rank) of ``samples_ms``."""
    ordered = sorted(samples_ms)
    return Timing(statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1])


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s; a RuntimeError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def celery_broker() -> Iterator[str]:
    """The broker URL for the benchmark's workers: REDIS_URL, else a private redis-server
    that lives as long as the block. This process's Celery app sends through it too."""
    from django.conf import settings

    if settings.REDIS_URL:
        yield settings.REDIS_URL
        return
    from hotdash.celery import app as celery_app

    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    broker = f"redis://127.0.0.1:{port}/0"
    celery_app.conf.broker_url = broker
    celery_app.conf.broker_transport_options = {}
    time.sleep(0.5)
    try:
        yield broker
    finally:
        redis.terminate()


@contextlib.contextmanager
def sandbox_in_thread(
    *, speed: float, wrap: Callable[[Any], Any] = lambda app: app
) -> Iterator[tuple[Any, Any]]:
    """A sandbox world with its clock at ``speed``, served over HTTP on loopback by a thread of
    this process (``wrap`` wraps its WSGI app, e.g. to stamp requests), the Fly and GitHub URLs
    pointed at it and the demo seeded. Yields (world, the wrapped app)."""
    from django.conf import settings
    from django.core.management import call_command

    from hotdash.sandbox import SandboxApp, World
    from hotdash.sandbox.server import serve_in_thread

    world = World()
    world.clock.speed, world.clock.frozen = speed, False
    wrapped = wrap(SandboxApp(world))
    server = serve_in_thread(wrapped)
    try:
        root = f"http://127.0.0.1:{server.server_port}"
        settings.FLY_API_URL, settings.GITHUB_API_URL = f"{root}/fly/v1", f"{root}/github"
        settings.DEMO_PASSWORD = "bench-demo-password"
        with open(os.devnull, "w") as quiet:
            call_command("seed_demo", stdout=quiet)
        yield world, wrapped
    finally:
        server.shutdown()


@contextlib.contextmanager
def sandbox_process() -> Iterator[Any]:
    """The sandbox in its own process (`manage.py sandbox`) over HTTP on loopback, the Fly and
    GitHub URLs pointed at it and the demo seeded, apps left by an earlier run removed. Yields
    a client for its control API (/_sandbox)."""
    import httpx
    from django.conf import settings
    from django.core.management import call_command

    from deployments.models import App, Environment

    port = free_port()
    command = [sys.executable, "manage.py", "sandbox", "--port", str(port), "--no-rate-limits"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{root}/_sandbox/state", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.2)
        settings.FLY_API_URL, settings.GITHUB_API_URL = f"{root}/fly/v1", f"{root}/github"
        settings.DEMO_PASSWORD = "bench-demo-password"
        with open(os.devnull, "w") as quiet:
            call_command("seed_demo", stdout=quiet)
        copies = App.objects.exclude(name="hot-dash")  # left by an earlier run
        Environment.objects.filter(app__in=copies).delete()
        copies.delete()
        with httpx.Client(base_url=f"{root}/_sandbox", timeout=30) as control:
            yield control
    finally:
        process.terminate()
        process.wait(30)


def add_fly_app(control: Any) -> Callable[[str, str], None]:
    """``add(name, like)``: a Fly app in the sandbox shaped like the demo's ``like``."""

    def add(name: str, like: str) -> None:
        control.post("/fly-apps", json={"name": name, "like": like}).raise_for_status()

    return add


def process_env(broker: str, **overrides: str) -> dict[str, str]:
    """The environment for a benchmark's worker or web process: this process's, with the broker
    and the sandbox's URLs, then ``overrides``."""
    from django.conf import settings

    return {
        **os.environ,
        "REDIS_URL": broker,
        "FLY_API_URL": settings.FLY_API_URL,
        "GITHUB_API_URL": settings.GITHUB_API_URL,
        **overrides,
    }


def celery_worker(
    *args: str,
    env: dict[str, str],
    log: Path,
    main: tuple[str, ...] = ("-m", "celery", "-A", "hotdash"),
) -> subprocess.Popen:
    """A `celery worker` process (in a session of its own: stop it with :func:`stop`) with
    ``args`` after the benchmarks' common ones; its output goes to ``log``."""
    command = [
        sys.executable,
        *main,
        "worker",
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        *args,
    ]
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    """Kill a process started in its own session, with its children."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 9)
    process.wait()
