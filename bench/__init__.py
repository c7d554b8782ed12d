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

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass


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
