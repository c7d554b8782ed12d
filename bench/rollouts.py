"""Many production rollouts at once on two worker processes, against one alone, in the same run.

* The fleet: N apps (full 100, ``--quick`` 10), each with a production environment of 2 machines
  running 1.2.0 in the sandbox, plus one more app for the lone rollout. Health grace 2 s, checks
  every 1 s, verification window 3 s, DEPLOY_POLL_SECONDS 1. The sandbox is served over HTTP on
  loopback and adds 200 ms of real latency to every Fly and GitHub call (a ``latency`` fault),
  with its clock at real speed, so machines boot and pass checks in real seconds.
* Workers: two real ``celery worker`` processes started with the product's worker settings
  (pool and concurrency from hotdash/settings.py; ``BENCH_WORKER_ARGS`` adds arguments, e.g.
  ``--pool prefork --concurrency 2`` for the old model), on PostgreSQL and Redis (REDIS_URL, else
  a private redis-server). GitHub writes keep production pacing (GITHUB_MUTATION_SPACING_MS 1000).
* The critical path: one rollout of 1.3.0 queued alone on the idle system, from its queueing
  commit to its end (``finished_at``). Then all N are queued in one transaction — the commit the
  final approval makes (``deploy_queue``) — and all-done is the last ``finished_at`` after that
  commit. The ratio is all-done / critical path.
* Exactly once: the sandbox's request log counts the machine updates (POST
  /apps/{app}/machines/{id}) of every fleet machine; each must be 1.
* Wake-up lateness: each worker process records when every task starts; for a message sent
  with a countdown (a wait), lateness = start - its ETA.
* Peak DB connections: pg_stat_activity on the bench database, sampled every 0.2 s.
* Broker messages per deploy: tasks the workers ran during the burst / N (each message is one
  task run; all task names).
* CPU seconds per deploy: user+system time of the worker processes (with reaped children)
  during the burst / N.
* GitHub: the time from the commit until the last deployment status POST reached the sandbox.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import threading
import time
from datetime import datetime
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
from bench.deploy_latency import queue_deploy

QUICK = quick()
FLEET = int(os.environ.get("BENCH_ROLLOUTS", "10" if QUICK else "100"))
WORKERS = 2
LATENCY = 0.2
TARGET = 1.5


def worker_main() -> None:
    """A celery worker that records, per task run, when it started and its ETA (if any)."""
    import django

    django.setup()
    from celery.signals import task_prerun

    from hotdash.celery import app

    path = os.environ["BENCH_TASK_LOG"]

    @task_prerun.connect(weak=False)
    def stamp(task=None, **_: object) -> None:
        eta = task.request.eta or "-"
        if isinstance(eta, datetime):
            eta = eta.isoformat()
        with open(path, "a") as out:
            out.write(f"{time.time()} {task.name} {eta}\n")

    app.worker_main(sys.argv[1:])


class Stamps:
    """WSGI wrapper: the wall time, method and path of every Fly and GitHub request."""

    def __init__(self, app) -> None:
        self.app = app
        self.calls: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        result = self.app(environ, start_response)
        with self.lock:
            self.calls.append((time.time(), environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return result

    def since(self, moment: float) -> list[tuple[float, str, str]]:
        with self.lock:
            return [call for call in self.calls if call[0] >= moment]


def _cpu_seconds(session: int) -> float:
    """User+system CPU of every process in ``session`` (and the children they reaped)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6 of stat: the session id
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / tick


class ConnectionSampler(threading.Thread):
    def __init__(self, dsn: str, database: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.database = dsn, database
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stopped.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.database]
                ).fetchone()
                self.peak = max(self.peak, row[0] - 1)  # not this sampler
                self.stopped.wait(0.2)


def _fleet(count: int, world) -> list:
    """``count`` + 1 apps cloned from the demo's hot-dash production, each with its own Fly app
    of 2 machines on 1.2.0 and its own 1.3.0 release; returns their production environments."""
    from deployments.models import App, Environment

    demo = App.objects.get(name="hot-dash")
    production = demo.environments.get(name="production")
    release = demo.releases.get(version="1.3.0")
    environments = []
    run = f"{int(time.time()) % 1_000_000:06d}"  # the bench database outlives each run
    for index in range(count + 1):
        app = App.objects.get(pk=demo.pk)
        app.pk, app.name = None, f"fleet-{run}-{index:03d}"
        app.save()
        env = Environment.objects.get(pk=production.pk)
        env.pk, env.app, env.fly_app_name = None, app, app.name
        env.current_release = None
        env.promotion_position = None
        env.health_http_grace_seconds = env.health_tcp_grace_seconds = 2
        env.health_http_timeout_seconds = env.health_tcp_timeout_seconds = 1
        env.health_http_interval_seconds = env.health_tcp_interval_seconds = 1
        env.health_attempts = 3
        env.verification_window_seconds = 3
        env.save()
        copy = type(release).objects.get(pk=release.pk)
        copy.pk, copy.app = None, app
        copy.save()
        world.fly.add_demo_app(env.fly_app_name, "production")
        environments.append(env)
    return environments


def _queue(environments, machines: dict[int, list[str]], requester) -> tuple[list, float]:
    """A deploy of 1.3.0 to each environment, queued in one transaction; (deploys, commit time)."""
    from django.db import transaction

    deploys, committed = [], []
    with transaction.atomic():
        for index, env in enumerate(environments):
            release = env.app.releases.get(version="1.3.0")
            stamp = None if index else (lambda: committed.append(time.time()))
            deploys.append(queue_deploy(env, release, requester, machines[env.pk], on_commit=stamp))
    return deploys, committed[0]


def _finished(deploys, timeout: float) -> list:
    from deployments.models import Deploy

    ids = [d.pk for d in deploys]
    wait_for(
        lambda: Deploy.objects.filter(pk__in=ids, finished_at__isnull=False).count() == len(ids),
        timeout,
        f"{len(ids)} deploys to end",
    )
    ended = list(Deploy.objects.filter(pk__in=ids))
    failed = [d for d in ended if d.state != Deploy.State.SUCCEEDED]
    if failed:
        raise RuntimeError(f"deploy #{failed[0].pk} {failed[0].state}: {failed[0].error}")
    return ended


def _statuses_reported(stamps: Stamps, since: float, expected: int, timeout: float) -> float:
    """When the last of ``expected`` deployment statuses after ``since`` reached the sandbox."""

    def posted() -> list[float]:
        return [
            t
            for t, method, path in stamps.since(since)
            if method == "POST" and path.startswith("/github/") and path.endswith("/statuses")
        ]

    wait_for(lambda: len(posted()) >= expected, timeout, f"{expected} GitHub deployment statuses")
    return max(posted())


def run() -> str:
    import psycopg  # noqa: F401 - the sampler's driver, checked before anything starts

    with celery_broker() as broker, sandbox_in_thread(speed=1.0, wrap=Stamps) as (world, stamps):
        return _measure(broker, world, stamps)


def _measure(broker: str, world, stamps: Stamps) -> str:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from deployments.models import GitHubPacer, GitHubReport
    from hotdash.celery import app as celery_app
    from hotdash.integrations import fly_client

    celery_app.control.purge()  # messages a killed earlier run left behind
    # The database outlives each run: an interrupted run's GitHub writes are not this run's.
    GitHubReport.objects.filter(outcome=GitHubReport.Outcome.PENDING).update(
        outcome=GitHubReport.Outcome.FAILED, error="left by an earlier benchmark run"
    )
    GitHubPacer.objects.all().delete()
    environments = _fleet(FLEET, world)
    with fly_client() as fly:
        machines = {e.pk: [m.id for m in fly.list_machines(e.fly_app_name)] for e in environments}
    requester = get_user_model().objects.get(username="alice")
    world.add_fault("latency", seconds=LATENCY)

    tmp = Path(tempfile.mkdtemp())
    task_log = tmp / "tasks.log"
    extra = shlex.split(os.environ.get("BENCH_WORKER_ARGS", ""))
    env = process_env(
        broker,
        DEPLOY_POLL_SECONDS="1",
        DEPLOY_QUEUE_POLL_SECONDS="1",
        BENCH_TASK_LOG=str(task_log),
    )
    main = ("-c", "from bench.rollouts import worker_main; worker_main()")
    workers = [
        celery_worker(
            "--hostname",
            f"bench{index}@%h",
            *extra,
            env=env,
            log=tmp / f"worker{index}.log",
            main=main,
        )
        for index in range(WORKERS)
    ]
    database = connection.settings_dict["NAME"]
    server_dsn = settings.DATABASES["default"]
    dsn = (
        f"postgresql://{server_dsn['USER']}@{server_dsn['HOST'] or '127.0.0.1'}:"
        f"{server_dsn['PORT'] or 5432}/{database}"
    )
    sampler = ConnectionSampler(dsn, database)
    try:
        wait_for(lambda: task_log.exists(), 90, "the workers to start")  # each sends a reconcile
        time.sleep(2)
        lone, fleet = environments[0], environments[1:]
        # The critical path: one rollout alone on the idle system.
        (alone,), lone_commit = _queue([lone], machines, requester)
        (alone,) = _finished([alone], 300)
        critical = alone.finished_at.timestamp() - lone_commit
        _statuses_reported(stamps, lone_commit, 2, 120)
        time.sleep(2)

        sampler.start()
        cpu_before = sum(_cpu_seconds(w.pid) for w in workers)
        deploys, commit = _queue(fleet, machines, requester)
        ended = _finished(deploys, 1800)
        all_done = max(d.finished_at.timestamp() for d in ended) - commit
        cpu = sum(_cpu_seconds(w.pid) for w in workers) - cpu_before
        last_done = commit + all_done
        sampler.stopped.set()
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())  # as the burst ended
        github_last = _statuses_reported(stamps, commit, 2 * FLEET, 1800) - commit
    finally:
        sampler.stopped.set()
        for worker in workers:
            stop(worker)

    updates: dict[str, int] = {}
    names = {e.fly_app_name for e in fleet}
    for request in world.requests:
        parts = request.path.strip("/").split("/")  # apps/{app}/machines/{id}
        if (
            request.service == "fly"
            and request.method == "POST"
            and len(parts) == 4
            and parts[0] == "apps"
            and parts[1] in names
            and parts[2] == "machines"
            and 200 <= request.status < 300
        ):
            updates[parts[3]] = updates.get(parts[3], 0) + 1
    machine_ids = [m for e in fleet for m in machines[e.pk]]
    counts = [updates.get(m, 0) for m in machine_ids]
    exactly_once = all(c == 1 for c in counts) and set(updates) <= set(machine_ids)

    tasks = []
    for line in task_log.read_text().splitlines():
        started, name, eta = line.split(" ", 2)
        tasks.append((float(started), name, eta))
    burst = [t for t in tasks if commit <= t[0] <= last_done]
    lateness = [
        started - datetime.fromisoformat(eta).timestamp()
        for started, name, eta in burst
        if eta != "-" and name.endswith("deploy_run")
    ]
    upstream = stamps.since(commit)
    ratio = all_done / critical
    verdict = "meets" if ratio <= TARGET else "misses"
    worker_args = " ".join(extra) or "the product's (CELERY_WORKER_POOL, WORKER_CONCURRENCY)"
    size = "quick" if QUICK else "full"
    from bench import machine_markdown

    late = (
        f"{percentile(lateness, 50) * 1000:.0f} ms / {max(lateness) * 1000:.0f} ms "
        f"({len(lateness)} waits)"
        if lateness
        else "no waits"
    )
    command = "python -m bench rollouts" + (" --quick" if QUICK else "")
    return f"""## Rollouts: {FLEET} production rollouts at once on {WORKERS} worker processes

{machine_markdown()}

`{command}` ({size} size, {FLEET} apps; worker arguments: {worker_args}). Method: see the
docstring of bench/rollouts.py — each app's production has 2 machines, the sandbox adds
{LATENCY * 1000:.0f} ms to every Fly and GitHub call, health grace 2 s, verification window 3 s,
GitHub writes paced 1 s apart per token as in production.

| figure | value |
|---|---:|
| critical path: one rollout alone (commit → `finished_at`) | {critical:.1f} s |
| all {FLEET} rollouts done (commit → last `finished_at`) | {all_done:.1f} s |
| ratio | **{ratio:.2f}×** ({verdict} the {TARGET}× target) |
| machines updated exactly once (sandbox log: {len(machine_ids)} machines) | {"yes" if exactly_once else "NO: " + str(sorted(set(counts)))} |
| wait wake-up lateness p50 / max | {late} |
| peak DB connections (pg_stat_activity) | {sampler.peak} |
| broker messages per deploy (task runs during the burst / N) | {len(burst) / FLEET:.1f} |
| upstream calls per deploy (Fly + GitHub, burst) | {len(upstream) / FLEET:.1f} |
| worker CPU seconds per deploy | {cpu / FLEET:.2f} |
| last GitHub deployment status reported (after the commit) | {github_last:.1f} s |

Load average when the burst ended: {load} (1/5/15 min).

rollouts: {FLEET} deploys on {WORKERS} workers in {ratio:.2f}× the critical path (exactly once: {"yes" if exactly_once else "no"})
"""  # noqa: E501
