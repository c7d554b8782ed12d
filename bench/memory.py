"""Resident memory of a web process and a worker process over DEPLOYS deploys.

The demo world against the sandbox over HTTP (clock 100x, grace and verification window 0,
as in bench/deploy_latency.py); one Celery worker (prefork, concurrency 2, Redis broker from
REDIS_URL or a private redis-server) runs the deploys one after another, alternating two
releases on staging's machines. One gunicorn process (gunicorn.conf.py, 4 threads, worker
recycling off so that a leak would show) serves, after each deploy, that deploy's page, the
Overview and the Deploys page to a signed-in viewer. RSS (VmRSS from /proc) of the gunicorn
worker, of the Celery main process and of each pool process, at the half-way deploy and the
last. The pool runs as configured for production: each pool process is replaced after
CELERY_WORKER_MAX_TASKS_PER_CHILD tasks, so the pool rows are of the processes alive then
(the section says whether they were replaced); the main process lives throughout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import quick
from bench.deploy_latency import ROOT, _free_port, _wait, queue_deploy

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
    import httpx
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from bench import machine_markdown
    from deployments.models import App, Deploy
    from hotdash.integrations import fly_client
    from hotdash.sandbox import SandboxApp, World
    from hotdash.sandbox.server import serve_in_thread

    redis = None
    broker = settings.REDIS_URL
    if not broker:
        port = _free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        broker = f"redis://127.0.0.1:{port}/0"
        from hotdash.celery import app as celery_app

        celery_app.conf.broker_url = broker
        celery_app.conf.broker_transport_options = {}
        time.sleep(0.5)
    world = World()
    world.clock.speed, world.clock.frozen = 100.0, False
    server = serve_in_thread(SandboxApp(world))
    root = f"http://127.0.0.1:{server.server_port}"
    settings.FLY_API_URL, settings.GITHUB_API_URL = f"{root}/fly/v1", f"{root}/github"
    settings.DEMO_PASSWORD = "bench-demo-password"
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    app = App.objects.get(name="hot-dash")
    staging = app.environments.get(name="staging")
    staging.health_http_grace_seconds = staging.health_tcp_grace_seconds = 0
    staging.verification_window_seconds = 0
    staging.save()
    releases = [app.releases.get(version="1.3.0"), app.releases.get(version="1.2.0")]
    with fly_client() as fly:
        machine_ids = [machine.id for machine in fly.list_machines(staging.fly_app_name)]
    users = get_user_model().objects
    requester = users.get(username="alice")  # the demo deployer
    viewer = users.filter(groups__name="viewer").first() or requester
    cookie = _session_cookie(viewer)

    env = {
        **os.environ,
        "REDIS_URL": broker,
        "FLY_API_URL": settings.FLY_API_URL,
        "GITHUB_API_URL": settings.GITHUB_API_URL,
        "DEPLOY_POLL_SECONDS": "0",
        "DEPLOY_QUEUE_POLL_SECONDS": "0",
        "GITHUB_MUTATION_SPACING_MS": "0",
        "HOST": "127.0.0.1",
        "PORT": str(PORT),
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_CONCURRENCY": "1",
    }
    bin_dir = Path(sys.executable).parent
    logs = Path(tempfile.mkdtemp())
    worker = subprocess.Popen(
        [
            *(str(bin_dir / "celery"), "-A", "hotdash", "worker", "--pool", "prefork"),
            *("--concurrency", "2", "--loglevel", "WARNING", "--hostname", "bench-memory@%h"),
        ],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "worker.log", "wb"),  # noqa: SIM115 - outlives this statement
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
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

        _wait(web_up, 60, "gunicorn")
        for number in range(1, DEPLOYS + 1):
            staging.refresh_from_db()
            deploy = queue_deploy(staging, releases[number % 2], requester, machine_ids)
            _wait(lambda d=deploy: Deploy.objects.get(pk=d.pk).is_terminal, 120, "a deploy")
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
        os.killpg(worker.pid, 9)
        os.killpg(web.pid, 15)
        worker.wait()
        web.wait()
        server.shutdown()
        if redis is not None:
            redis.terminate()
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
        f"(VmRSS). Pool processes replaced between the two samples: "
        f"{'yes' if pools[DEPLOYS // 2] != pools[DEPLOYS] else 'no'} (every "
        f"{settings.CELERY_WORKER_MAX_TASKS_PER_CHILD} tasks).",
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
