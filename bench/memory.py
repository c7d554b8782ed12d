"""Resident memory of a web process and a worker process over DEPLOYS deploys.

The demo world against the sandbox over HTTP (clock 100x, grace and verification window 0,
as in bench/deploy_latency.py); one Celery worker as production runs it (CELERY_WORKER_POOL and
WORKER_CONCURRENCY; Redis broker from REDIS_URL or a private redis-server) runs the deploys one
after another, alternating two releases on staging's machines. One gunicorn process
(gunicorn.conf.py, 4 threads, worker recycling off so that a leak would show) serves, after
each deploy, that deploy's page, the Overview and the Deploys page to a signed-in viewer. RSS
(VmRSS from /proc) of the gunicorn worker and of the Celery worker with its pool processes, if
any, at the half-way deploy and the last. The threads pool is one process that lives
throughout, so a leak would show in it; a prefork pool replaces each pool process after
CELERY_WORKER_MAX_TASKS_PER_CHILD tasks, so its rows are of the processes alive then (the
section says whether they were replaced).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import (
    ROOT,
    celery_broker,
    celery_worker,
    process_env,
    quick,
    sandbox_in_thread,
    stop,
    wait_for,
)
from bench.deploy_latency import instant_staging, queue_deploy

DEPLOYS = 100 if quick() else 1_000
PORT = int(os.environ.get("BENCH_WEB_PORT", "8171"))


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


def _session_cookie(user) -> str:
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def run() -> str:
    with celery_broker() as broker, sandbox_in_thread(speed=100.0):
        return _measure(broker)


def _measure(broker: str) -> str:
    import httpx
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from bench import machine_markdown
    from deployments.models import Deploy

    staging, releases, machine_ids = instant_staging()
    users = get_user_model().objects
    requester = users.get(username="alice")  # the demo deployer
    viewer = users.filter(groups__name="viewer").first() or requester
    cookie = _session_cookie(viewer)

    env = process_env(
        broker,
        DEPLOY_POLL_SECONDS="0",
        DEPLOY_QUEUE_POLL_SECONDS="0",
        GITHUB_MUTATION_SPACING_MS="0",
        HOST="127.0.0.1",
        PORT=str(PORT),
        ALLOWED_HOSTS="127.0.0.1",
        WEB_CONCURRENCY="1",
    )
    bin_dir = Path(sys.executable).parent
    logs = Path(tempfile.mkdtemp())
    worker = celery_worker("--hostname", "bench-memory@%h", env=env, log=logs / "worker.log")
    web = subprocess.Popen(
        [
            *(str(bin_dir / "gunicorn"), "--config", "gunicorn.conf.py"),
            *("--max-requests", "0", "--access-logfile", "/dev/null", "hotdash.wsgi"),
        ],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "web.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    samples: dict[int, dict[str, float]] = {}
    pools: dict[int, list[int]] = {}
    started = time.monotonic()
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{PORT}", cookies={"sessionid": cookie})

        def web_up() -> bool:
            try:
                return client.get("/health").status_code < 500
            except httpx.HTTPError:
                return False

        wait_for(web_up, 60, "gunicorn")
        for number in range(1, DEPLOYS + 1):
            staging.refresh_from_db()
            deploy = queue_deploy(staging, releases[number % 2], requester, machine_ids)
            wait_for(lambda d=deploy: Deploy.objects.get(pk=d.pk).is_terminal, 120, "a deploy")
            deploy.refresh_from_db()
            if deploy.state != Deploy.State.SUCCEEDED:
                raise RuntimeError(f"deploy #{deploy.pk} {deploy.state}: {deploy.error}")
            for path in (f"/deploys/{deploy.pk}/", "/", "/deploys/"):
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {path}: {response.status_code}")
            if number in (DEPLOYS // 2, DEPLOYS):
                (web_pid,) = _children(web.pid)
                pool = _children(worker.pid)
                pools[number] = pool
                samples[number] = {
                    "web": _rss_mb(web_pid),
                    "worker": _rss_mb(worker.pid),
                    **{f"pool {index + 1}": _rss_mb(pid) for index, pid in enumerate(pool)},
                }
    finally:
        stop(worker)
        os.killpg(web.pid, 15)
        web.wait()
    minutes = (time.monotonic() - started) / 60
    half, last = samples[DEPLOYS // 2], samples[DEPLOYS]
    worker_total = {n: sum(v for k, v in s.items() if k != "web") for n, s in samples.items()}
    growth = {key: (last[key] - half[key]) / half[key] * 100 for key in last if key in half}
    growth_total = (worker_total[DEPLOYS] - worker_total[DEPLOYS // 2]) / worker_total[DEPLOYS // 2]
    worst_pool = max(v for k, v in last.items() if k.startswith("pool") or k == "worker")
    met = (
        last["web"] <= 150
        and worst_pool <= 200
        and max(growth.values()) < 10
        and growth_total * 100 < 10
    )
    lines = [
        f"## Memory over {DEPLOYS:,} deploys{' (quick size)' if quick() else ''}",
        "",
        machine_markdown(),
        "",
        "Method: see the docstring of bench/memory.py. "
        f"{DEPLOYS:,} deploys (each updating staging's machines and verified) in "
        f"{minutes:.1f} min, each followed by three page requests to the web process. RSS in MB "
        f"(VmRSS). Worker pool: {settings.CELERY_WORKER_POOL}, "
        f"{settings.CELERY_WORKER_CONCURRENCY} at once"
        + (
            f"; pool processes replaced between the two samples: "
            f"{'yes' if pools[DEPLOYS // 2] != pools[DEPLOYS] else 'no'} (every "
            f"{settings.CELERY_WORKER_MAX_TASKS_PER_CHILD} tasks)."
            if pools[DEPLOYS]
            else " (threads in the one worker process, never replaced)."
        ),
        "",
        f"| Process | after deploy {DEPLOYS // 2:,} | after deploy {DEPLOYS:,} | growth |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key in last:
        lines.append(f"| {key} | {half[key]:.1f} | {last[key]:.1f} | {growth[key]:+.1f} % |")
    lines.append(
        f"| worker, all processes | {worker_total[DEPLOYS // 2]:.1f} | "
        f"{worker_total[DEPLOYS]:.1f} | {growth_total * 100:+.1f} % |"
    )
    lines += [
        "",
        f"memory: web {last['web']:.0f} MB, worker {worst_pool:.0f} MB per process "
        f"({worker_total[DEPLOYS]:.0f} MB in all) after {DEPLOYS:,} deploys, growth "
        f"{max(growth.values()):+.1f} % from deploy {DEPLOYS // 2:,} (targets ≤ 150 / ≤ 200 MB, "
        f"< 10 %: {'met' if met else 'MISSED'})",
    ]
    return "\n".join(lines)
