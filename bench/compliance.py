"""The compliance sweep of 50 apps against the sandbox with 200 ms of latency on every upstream
request: one sweep of all 50 next to each app swept alone.

* Apps: the seeded demo app and 49 copies (each with its own Fly production and staging apps,
  machines and secrets, made through the sandbox's control API; all share the demo's GitHub
  repository), on the benchmark's PostgreSQL database.
* Upstreams: the sandbox (`manage.py sandbox`, Fly's per-action rate limits off) in its own
  process, over HTTP on loopback, as GitHub and Fly are other machines' work, not HotDash's;
  a ``latency`` fault adds 200 ms (a real sleep) to every Fly and GitHub request.
* Alone: each app swept by itself (``compliance_sweep(apps=[app])``), one after another; the
  slowest of the 50 is "the time of the slowest app".
* Together: one ``compliance_sweep(apps=all 50)``, as the daily beat entry runs it (upstreams
  read concurrently, up to COMPLIANCE_SWEEP_CONCURRENCY threads; runs stored in turn).
  Target: within 2x the slowest app alone.
"""

from __future__ import annotations

import os
import statistics
import time

from bench import quick

APPS = int(os.environ.get("BENCH_COMPLIANCE_APPS", "10" if quick() else "50"))
LATENCY_SECONDS = 0.2


def run() -> str:
    from django.conf import settings

    from bench import add_fly_app, machine_markdown, sandbox_process
    from deployments.models import App, ComplianceRun
    from deployments.services.compliance import compliance_sweep
    from tests.compliance.multi import make_apps

    with sandbox_process() as control:
        apps = [App.objects.get(name="hot-dash"), *make_apps(add_fly_app(control), APPS - 1)]
        compliance_sweep(apps=apps[:1])  # warm-up: imports, connections, the audit chain
        control.post("/faults", json={"kind": "latency", "seconds": LATENCY_SECONDS})
        control.delete("/requests")

        alone = []
        for app in apps:
            started = time.perf_counter()
            compliance_sweep(apps=[app])
            alone.append(time.perf_counter() - started)
        requests = len(control.get("/requests").json()) / len(apps)
        started = time.perf_counter()
        runs = compliance_sweep(apps=apps)
        together = time.perf_counter() - started

    results = {run.get_result_display() for run in runs}
    assert not any(run.result == ComplianceRun.Result.ERROR for run in runs), results
    slowest = max(alone)
    ratio = together / slowest
    verdict = "met" if ratio <= 2 else "NOT met"
    latency = f"{LATENCY_SECONDS * 1000:.0f} ms"
    return f"""## Compliance sweep: {len(apps)} apps, {latency} upstream latency

{machine_markdown()}

| | seconds |
|---|---:|
| one app alone: median of the {len(apps)} | {statistics.median(alone):.2f} |
| one app alone: slowest of the {len(apps)} | {slowest:.2f} |
| all {len(apps)} apps in one sweep | {together:.2f} |

All {len(apps)} apps in one sweep took {ratio:.2f}x the slowest app alone (target ≤ 2x: {verdict}).
Each app's sweep makes {requests:.0f} upstream requests one after another (GitHub: repository,
branch protection, check runs, secret-scanning alerts, Actions secrets, open pull requests;
Fly: the org's apps, then each environment's machines and secrets), so an app alone takes about
{requests:.0f} x {latency}; in the sweep of all apps every app's reads run
at once (COMPLIANCE_SWEEP_CONCURRENCY = {settings.COMPLIANCE_SWEEP_CONCURRENCY} threads), then
the runs are judged and stored one by one (one transaction each, with its audit event), and the
audit chain is verified once for all of them. Runs' results: {", ".join(sorted(results))}.

Method: `python -m bench compliance` (see the docstring of bench/compliance.py). The sandbox
runs in its own process (`manage.py sandbox`) over HTTP on loopback; the latency is a real
sleep per request (the sandbox's `latency` fault), so the figures are dominated by it by design.
"""
