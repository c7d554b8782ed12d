"""Latency from a deploy's queueing commit to the worker's first Fly API call, next to a bare
Celery round trip, both through Redis to one real worker process, in the same run.

* Deploy: a one-machine environment of the demo app against the sandbox served over HTTP
  (clock 100x so machines boot in milliseconds; grace and verification window 0). For each
  deploy, an ``on_commit`` hook registered before ``deploy_queue`` stamps the commit; a WSGI
  wrapper stamps the first Fly request the worker makes afterwards (wall clock, same machine),
  and the first Fly request that changes something (the machine lease, a POST).
  Deploys run one after another (the environment allows one at a time), alternating between
  two releases so every deploy really updates the machine. The first WARMUP deploys are not
  counted: they let both pool processes build their (then reused) API clients.
* Bare round trip: ``worker_heartbeat.apply_async()`` until the task body's timestamp
  (WorkerHeartbeat.seen_at, taken before its one DB write) — publish, Redis, worker prefetch,
  hand-over to a pool process, task start.
* The two are interleaved (a round trip, then a deploy, RUNS times) so both see the same
  machine and the same worker; the round trips are also measured back to back beforehand,
  where the worker does nothing else, for reference.

The first Fly call is the worker's pre-claim read. A deploy queued on an idle environment
(nothing running, nothing queued before it) is sent with its Fly app name; the run task's
first action is reading that app's machines (GET /apps/{app}/machines), the state the plan is
checked against, before it loads the deploy. Then it takes the message's lease and claims the
environment in one transaction (lease, state running, log line, audit event); a message that
claims nothing discards the read. Between the claim and the first Fly write come the
in-memory artifact re-check, the plan check against that read, the GitHub deployment (three
GitHub calls) and the step commits.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench import (
    celery_broker,
    celery_worker,
    percentile,
    process_env,
    quick,
    sandbox_in_thread,
    stop,
    wait_for,
)

RUNS = int(os.environ.get("BENCH_DEPLOYS", "30" if quick() else "200"))
WARMUP = 3


class Stamps:
    """WSGI wrapper that remembers the wall time and method of every Fly request."""

    def __init__(self, app) -> None:
        self.app = app
        self.fly: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/fly/"):
            with self.lock:
                self.fly.append((time.time(), environ["REQUEST_METHOD"]))
        return self.app(environ, start_response)

    def first_after(self, moment: float, *, writes: bool = False) -> float:
        with self.lock:
            return next(
                t for t, method in self.fly if t >= moment and (method != "GET" or not writes)
            )


def instant_staging():
    """The demo's staging with no grace period and no verification window, the two releases
    deploys alternate between, and its machines' ids."""
    from deployments.models import App
    from hotdash.integrations import fly_client

    app = App.objects.get(name="hot-dash")
    staging = app.environments.get(name="staging")
    staging.health_http_grace_seconds = staging.health_tcp_grace_seconds = 0
    staging.verification_window_seconds = 0
    staging.save()
    releases = [app.releases.get(version="1.3.0"), app.releases.get(version="1.2.0")]
    with fly_client() as fly:
        machine_ids = [m.id for m in fly.list_machines(staging.fly_app_name)]
    return staging, releases, machine_ids


def queue_deploy(environment, release, requester, machine_ids, *, on_commit=None):
    """Create, plan and queue a deploy of ``release`` to ``environment`` (approved: no gate),
    calling ``on_commit`` (before the queue's own hook) when it commits."""
    from django.db import transaction

    from deployments.models import Deploy
    from deployments.services.deploys import deploy_queue
    from deployments.services.plans import deploy_plan_create

    with transaction.atomic():
        deploy = Deploy.objects.create(
            environment=environment,
            release=release,
            requested_by=requester,
            reason="benchmark",
            image_ref=release.image_ref,
            image_digest=release.image_digest,
            artifact_sha256=release.artifact_sha256,
            commit_sha=release.commit_sha,
            previous_release=environment.current_release,
            previous_image_ref=environment.current_image_ref,
        )
        deploy_plan_create(
            deploy=deploy, target_name=release.tag, machine_ids=machine_ids, verify_data={}
        )
        if on_commit:
            transaction.on_commit(on_commit)
        deploy_queue(deploy=deploy, actor=requester)
    return deploy


def run() -> str:
    with celery_broker() as broker, sandbox_in_thread(speed=100.0, wrap=Stamps) as (_, stamps):
        return _measure(broker, stamps)


def _measure(broker: str, stamps: Stamps) -> str:
    from django.contrib.auth import get_user_model

    from deployments.models import Deploy, WorkerHeartbeat
    from deployments.tasks.ops import worker_heartbeat

    staging, releases, machine_ids = instant_staging()
    requester = get_user_model().objects.get(username="alice")  # the demo deployer

    log = Path(tempfile.mkdtemp()) / "worker.log"
    env = process_env(
        broker,
        DEPLOY_POLL_SECONDS="0",
        DEPLOY_QUEUE_POLL_SECONDS="0",
        # Production spaces GitHub writes a second apart; that comes after the first Fly call
        # and would only stretch the run (and the first-write reference row) by seconds.
        GITHUB_MUTATION_SPACING_MS="0",
    )
    worker = celery_worker(
        *("--pool", "prefork", "--concurrency", "2", "--hostname", "bench@%h"), env=env, log=log
    )
    try:
        time.sleep(3)
        # Warm up both paths (imports, connections) before measuring.
        worker_heartbeat.apply_async()
        wait_for(lambda: WorkerHeartbeat.objects.exists(), 60, "the worker to start")

        def bare_round_trip() -> float:
            before = WorkerHeartbeat.objects.order_by("-seen_at").first().seen_at
            sent = time.time()
            worker_heartbeat.apply_async()
            wait_for(
                lambda: WorkerHeartbeat.objects.filter(seen_at__gt=before).exists(),
                30,
                "a heartbeat",
            )
            seen = WorkerHeartbeat.objects.order_by("-seen_at").first().seen_at.timestamp()
            return (seen - sent) * 1000

        back_to_back = [bare_round_trip() for _ in range(RUNS)]
        bare: list[float] = []
        engine: list[float] = []
        claims: list[float] = []  # commit → the claim's timestamp (started_at)
        reads: list[float] = []  # the first Fly call → that timestamp
        writes: list[float] = []
        for index in range(RUNS + WARMUP):
            # Interleaved, so both see the same machine: a bare round trip, then a deploy.
            round_trip = bare_round_trip()
            if index >= WARMUP:
                bare.append(round_trip)
            release = releases[index % 2]
            staging.refresh_from_db()
            committed: list[float] = []
            deploy = queue_deploy(
                staging,
                release,
                requester,
                machine_ids,
                on_commit=lambda c=committed: c.append(time.time()),
            )
            wait_for(lambda d=deploy: Deploy.objects.get(pk=d.pk).is_terminal, 60, "a deploy")
            deploy.refresh_from_db()
            if deploy.state != Deploy.State.SUCCEEDED:
                raise RuntimeError(f"deploy #{deploy.pk} {deploy.state}: {deploy.error}")
            if index >= WARMUP:
                first = stamps.first_after(committed[0])
                engine.append((first - committed[0]) * 1000)
                claims.append((deploy.started_at.timestamp() - committed[0]) * 1000)
                reads.append((deploy.started_at.timestamp() - first) * 1000)
                write = stamps.first_after(committed[0], writes=True)
                writes.append((write - committed[0]) * 1000)
    finally:
        stop(worker)

    def row(values: list[float]) -> str:
        return (
            f"{percentile(values, 50):.1f} | {percentile(values, 95):.1f} | "
            f"{statistics.mean(values):.1f} | {max(values):.1f}"
        )

    p50, b50 = percentile(engine, 50), percentile(bare, 50)
    ratio = p50 / b50
    quiet_ratio = p50 / percentile(back_to_back, 50)
    verdict = "meets" if ratio <= 1.5 else f"misses (by {p50 - 1.5 * b50:.1f} ms at p50)"
    cpu = platform.processor() or platform.machine()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"""## Deploy latency: approval commit → first Fly API call

Machine: {platform.node()} ({cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()},
{platform.system()} {platform.release()}); PostgreSQL and Redis on localhost; one Celery worker
process (prefork, concurrency 2); the sandbox over HTTP on loopback; load average {load}
(1/5/15 min) when written. {RUNS} deploys (after {WARMUP} warm-up deploys) and {RUNS} bare
round trips in the same run (`python -m bench deploy_latency`).

| ms | p50 | p95 | mean | max |
|---|---:|---:|---:|---:|
| commit → worker's first Fly call (pre-claim machines read) | {row(engine)} |
| bare Celery round trip (send → task running), interleaved with the deploys | {row(bare)} |
| bare Celery round trip, back to back (reference) | {row(back_to_back)} |
| • first Fly call → claim timestamp (`started_at`, taken inside the claim) | {row(reads)} |
| • commit → claim timestamp | {row(claims)} |
| commit → first Fly write (machine lease), for reference | {row(writes)} |

p50 ratio: {ratio:.2f}× the bare round trip — {verdict} the 1.5× target.

Method: see the docstring of bench/deploy_latency.py. The ratio compares the deploy with the
round trips interleaved with it (same machine, same moment). The first Fly call is the
worker's pre-claim read of the environment's machines (GET /apps/{{app}}/machines): the
message of a deploy queued on an idle environment names its Fly app, so the worker reads
before it touches the database; the claim (lease, state running, log line, `deploy.started`
audit event, one transaction) commits after it, and the artifact re-check and plan check
against that read follow the claim. Nothing in Fly or GitHub changes before the claim
commits; the first Fly write row is the first change (measured with GitHub write spacing off:
production spaces GitHub writes a second apart, which adds about a second to that row).
Fly and GitHub API clients are built once per worker process and reused by every run message;
the sandbox, like Fly's API, keeps their connections open between requests; workers keep
their database connections.

Where the time goes: the bare round trip stops when the task body starts; the deploy's first
Fly call adds the task's call into the client and the HTTP request's way to the sandbox's
application. Against the back-to-back round trips (a worker doing nothing else, which can
be the quicker of the two) the ratio is {quiet_ratio:.2f}×. The • rows show the claim following
the read; the first Fly write still waits for the claim, the GitHub deployment and the step
commits.
"""
