"""A normal rollback and an emergency rollback of the same three-machine environment, timed
side by side in one run against the sandbox served over HTTP, with per-call latency.

* The world: the demo's production with a third machine, its sandbox clock running in real
  time (a machine update takes the sandbox's stop + boot time, then the check grace period to
  pass its checks), every Fly API call delayed by LATENCY seconds (a sandbox latency fault).
  Health timings: grace GRACE s, check timeout 2 s, 3 attempts, verification window WINDOW s,
  30 % of the machines at a time (one machine a batch). The GitHub write spacing stays at its
  production default.
* The click: the approver's rollback request (``rollback_request``, the service the rollback
  form's two buttons call, ``emergency`` set for the second). The engine then runs in this process,
  each step called as the worker's task would be, waiting each countdown (DEPLOY_POLL_SECONDS
  1 s); the dispatch through the broker is measured by the deploy_latency benchmark.
* First the normal rollback (v1.2.0 → v1.1.1: it marks v1.2.0 bad and locks production as it
  starts), then, production's health set failing, the emergency rollback to the last healthy
  release (v1.1.1 → v1.1.0).
* A thread reads the sandbox's machines every 10 ms (in-process, no HTTP) and stamps when each
  one first runs the target image, started, with every check passing. A WSGI wrapper stamps
  each machine update request as it reaches the sandbox.

Figures: click → every machine on the target image and healthy; each machine's own update
(its update request → it is healthy on the new image), the slowest of them; click → the
rollback deploy succeeded.
"""

from __future__ import annotations

import os
import platform
import re
import threading
import time
from typing import Any

from bench import quick

# Both rollbacks change what is live, marked bad and locked: every run starts from the seed.
FRESH_DATABASE = True
LATENCY = float(os.environ.get("BENCH_ROLLBACK_LATENCY", "0.1"))
GRACE = 2 if quick() else 5
HEADER = (
    "| s | machines | batches | click → all on the image, healthy "
    "| one machine's update (its request → healthy) | click → rollback succeeded |\n"
    "|---|---:|---:|---:|---:|---:|"
)
WINDOW = 5 if quick() else 15
UPDATE = re.compile(r"^/fly/v1/apps/[^/]+/machines/([0-9a-f]+)$")


class UpdateStamps:
    """WSGI wrapper: the wall time each machine update request reaches the sandbox."""

    def __init__(self, app) -> None:
        self.app = app
        self.updates: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        match = UPDATE.match(environ.get("PATH_INFO", ""))
        if environ["REQUEST_METHOD"] == "POST" and match:
            with self.lock:
                self.updates.append((time.time(), match.group(1)))
        return self.app(environ, start_response)

    def since(self, moment: float) -> dict[str, float]:
        with self.lock:
            return {machine: at for at, machine in self.updates if at >= moment}


class HealthyWatch(threading.Thread):
    """Stamps when each machine of ``app`` first runs ``image`` started and healthy."""

    def __init__(self, world, app: str, image: str) -> None:
        super().__init__(daemon=True)
        self.world, self.app, self.image = world, app, image
        self.healthy: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with self.world.lock:
                machines = self.world.fly.summary()[self.app]
            now = time.time()
            for machine in machines:
                on_target = machine["image"] == self.image and machine["state"] == "started"
                if on_target and machine["healthy"]:
                    self.healthy.setdefault(machine["id"], now)
            time.sleep(0.01)


def _drive(deploy) -> None:
    """Run the deploy's steps in this process as the task chain would, waiting each
    countdown, until it ends."""
    from deployments.services.deploys import deploy_execute

    while True:
        deploy.refresh_from_db()
        token = deploy.lease_owner.removeprefix("next:")
        following = deploy_execute(deploy_id=deploy.pk, token=token, worker="bench")
        if following is None:
            deploy.refresh_from_db()
            return
        time.sleep(following.countdown)


def _rollback(
    approver, world, stamps: UpdateStamps, environment, target, *, emergency: bool
) -> dict[str, Any]:
    from deployments.models import Deploy
    from deployments.services.rollbacks import rollback_request

    watch = HealthyWatch(world, environment.fly_app_name, target.image_ref)
    watch.start()
    click = time.time()
    deploy = rollback_request(
        environment=environment,
        release=target,
        requested_by=approver,
        reason="benchmark",
        confirmation="hot-dash",
        emergency=emergency,
    )
    _drive(deploy)
    watch.done.set()
    watch.join()
    if deploy.state != Deploy.State.SUCCEEDED:
        raise RuntimeError(f"rollback #{deploy.pk} {deploy.state}: {deploy.error}")
    updated = stamps.since(click)
    machines = sorted(watch.healthy)
    if set(machines) != set(updated):
        raise RuntimeError(f"machines updated {sorted(updated)}, healthy {machines}")
    return {
        "batches": deploy.steps.filter(kind="update_batch").count(),
        "all_on_target": max(watch.healthy.values()) - click,
        "single": {m: watch.healthy[m] - updated[m] for m in machines},
        "succeeded": deploy.finished_at.timestamp() - click,
        "machines": len(machines),
    }


def run() -> str:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from bench import sandbox_in_thread
    from deployments.models import App, Environment
    from hotdash.integrations import fly_client

    settings.DEPLOY_POLL_SECONDS = settings.DEPLOY_QUEUE_POLL_SECONDS = 1
    with sandbox_in_thread(speed=1.0, wrap=UpdateStamps) as (world, stamps):
        app = App.objects.get(name="hot-dash")
        production = app.environments.get(name="production")
        with fly_client() as fly:
            existing = fly.list_machines(production.fly_app_name)[0]
            fly.create_machine(production.fly_app_name, existing.config, name="hot-dash-third")
        production.machine_count = 3
        production.health_http_grace_seconds = production.health_tcp_grace_seconds = GRACE
        production.health_http_timeout_seconds = production.health_tcp_timeout_seconds = 2
        production.health_attempts = 3
        production.verification_window_seconds = WINDOW
        production.max_unavailable_percent = 30
        production.save()
        time.sleep(GRACE + 4)  # the third machine boots and passes its checks
        world.add_fault("latency", service="fly", seconds=LATENCY)
        approver = get_user_model().objects.get(username="bob")  # a demo approver

        normal = _rollback(
            approver, world, stamps, production, app.releases.get(version="1.1.1"), emergency=False
        )
        Environment.objects.filter(pk=production.pk).update(health=Environment.Health.FAILING)
        emergency = _rollback(
            approver, world, stamps, production, app.releases.get(version="1.1.0"), emergency=True
        )

    slowest = max(max(normal["single"].values()), max(emergency["single"].values()))
    ratio = emergency["all_on_target"] / slowest
    verdict = (
        "meets" if ratio <= 2 else f"misses (by {emergency['all_on_target'] - 2 * slowest:.1f} s)"
    )

    def row(name: str, result: dict[str, Any]) -> str:
        singles = result["single"].values()
        return (
            f"| {name} | {result['machines']} | {result['batches']} | "
            f"{result['all_on_target']:.1f} | {min(singles):.1f} – {max(singles):.1f} | "
            f"{result['succeeded']:.1f} |"
        )

    cpu = platform.processor() or platform.machine()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"""## Rollback: normal vs emergency, click → every machine on the previous image

Machine: {platform.node()} ({cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()},
{platform.system()} {platform.release()}); PostgreSQL on localhost; the sandbox over HTTP on
loopback with its clock in real time and {LATENCY * 1000:.0f} ms added to every Fly API call;
load average {load} (1/5/15 min) when written (`python -m bench rollback`).

{HEADER}
{row("normal rollback (v1.2.0 → v1.1.1)", normal)}
{row("emergency rollback (v1.1.1 → v1.1.0)", emergency)}

Emergency: {emergency["all_on_target"]:.1f} s from the click to every machine on the previous
image, {ratio:.2f}× the slowest single machine update ({slowest:.1f} s) — {verdict} the 2×
target. The normal rollback took {normal["all_on_target"] / emergency["all_on_target"]:.1f}× as
long to reach the same point, and its verification window ({WINDOW} s) came after that.

Method: see the docstring of bench/rollback.py. Health timings: grace {GRACE} s, check
timeout 2 s, 3 attempts, verification window {WINDOW} s; 30 % of the machines a batch (one of
three). A machine's own update is bounded below by the sandbox's restart (stop 1 s, boot 2 s)
and the grace period; the engine polls health every second (DEPLOY_POLL_SECONDS), which the
figures include. The emergency rollback updates its three machines one request after another
in one batch, then waits for their health once (at most the grace period and one check
after they have started), and ends without a verification window; the normal one waits
for each batch's health in turn, then watches the window. Both include the GitHub
deployment (writes spaced 1 s apart, the production default).
"""
