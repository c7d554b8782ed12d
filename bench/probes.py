"""One uptime probe round over 200 environments whose health URLs answer after 100 ms.

* Environments: the seeded demo app and 99 copies (production and staging each: 200 probe
  targets, each with its own Fly app in the sandbox), on the benchmark's PostgreSQL database.
* Upstream: the sandbox (`manage.py sandbox`) in its own process over HTTP on loopback; every
  app's public health URL answers 200 after 100 ms of real sleep (the control API's
  ``/app-health`` latency).
* The round: ``uptime_probe_round()`` in this one process, as the beat job runs it in one worker
  (UPTIME_PROBE_CONCURRENCY threads probe, then each probe is stored with its uptime verdict).
  Timed over several rounds after a warm-up. Target: a round within 20 % of its minute (12 s).
"""

from __future__ import annotations

import os
import statistics
import time

from bench import quick

APPS = int(os.environ.get("BENCH_PROBE_APPS", "20" if quick() else "100"))
ROUNDS = int(os.environ.get("BENCH_PROBE_ROUNDS", "3" if quick() else "5"))
LATENCY_SECONDS = 0.1


def run() -> str:
    from django.conf import settings

    from bench import add_fly_app, machine_markdown, sandbox_process
    from deployments.models import Probe
    from deployments.selectors.uptime import probe_targets
    from deployments.services.uptime import uptime_probe_round
    from tests.compliance.multi import make_apps

    with sandbox_process() as control:
        Probe.objects.all().delete()
        make_apps(add_fly_app(control), APPS - 1)
        targets = probe_targets()
        for environment in targets:
            health = {"app": environment.fly_app_name, "status": 200, "latency": LATENCY_SECONDS}
            control.post("/app-health", json=health).raise_for_status()
        uptime_probe_round()  # warm-up: imports, connections
        rounds = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            probes = uptime_probe_round()
            rounds.append(time.perf_counter() - started)

    assert len(probes) == len(targets) and all(probe.ok for probe in probes)
    latencies = sorted(probe.latency_ms for probe in probes)
    slowest = max(rounds)
    share = slowest / 60
    verdict = "met" if share <= 0.2 else "NOT met"
    latency = f"{LATENCY_SECONDS * 1000:.0f} ms"
    return f"""## Uptime probes: {len(targets)} environments, {latency} health latency

{machine_markdown()}

| | seconds |
|---|---:|
| probe round: median of {ROUNDS} | {statistics.median(rounds):.2f} |
| probe round: slowest of {ROUNDS} | {slowest:.2f} |

The slowest round took {share:.1%} of its minute (target ≤ 20 %: {verdict}). Each round probes
{len(targets)} environments from one process, {settings.UPTIME_PROBE_CONCURRENCY} at a time
(UPTIME_PROBE_CONCURRENCY threads), then stores each probe in its own transaction with its
uptime verdict. Probe latencies in the last round: median {statistics.median(latencies):.0f} ms,
slowest {latencies[-1]} ms.

Method: `python -m bench probes` (see the docstring of bench/probes.py). The sandbox runs in
its own process (`manage.py sandbox`) over HTTP on loopback; the {latency} is a real sleep per
health request, so {len(targets)} / {settings.UPTIME_PROBE_CONCURRENCY} waves of it bound the round
from below.
"""
