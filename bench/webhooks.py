"""Webhook ingest under gunicorn: a burst of signed deliveries on loopback, then count rows.

Starts the production web server (gunicorn with gunicorn.conf.py: gthread, WEB_CONCURRENCY
processes of WEB_THREADS threads) and one Celery worker (prefork, concurrency 2) on the
benchmark's database, with Redis as the broker (REDIS_URL, else a private redis-server). The
load generator is wrk when it is installed (bench/webhooks.lua sends requests signed here
beforehand: wrk's Lua has no HMAC), else an asyncio client in this process (httpx), which takes
much of the two cores itself. Over CONNECTIONS connections it sends DELIVERIES signed ``push``
and ``pull_request`` deliveries as fast as they are answered, with REPLAYS re-sends of earlier
delivery ids mixed in (some while their original is still in flight); its own CPU time is
reported. Deliveries name a repository no app watches, so the worker's part is the processing
task's bookkeeping (load, mark ignored), not previews or builds. Afterwards: every delivery
stored exactly once, every replay answered "duplicate", one ``webhook.received`` audit event
each, all processed.

Two phases, each with its own deliveries and replays: a burst as fast as the server answers
(its rate is the throughput; its latency is mostly the queue that CONNECTIONS requests always
in flight make, CONNECTIONS / rate), then the same again sent at PACED_RATE a second, each
request at its scheduled time on a free connection (the latency of a server accepting that
rate while the worker processes what came before).

Latency: client-side (request sent to response read, in the load generator) and server-side
(gunicorn's access log request time).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import quick

DELIVERIES = 3_000 if quick() else 20_000
REPLAYS = DELIVERIES // 10
CONNECTIONS = 50
# The offered rate of the paced phase: the target throughput.
PACED_RATE = 1_000
WRK_THREADS = 2
# How long the worker may take to process every delivery after the burst.
WORKER_WAIT_SECONDS = 900
PORT = int(os.environ.get("BENCH_WEB_PORT", "8170"))
SECRET = "bench-webhook-secret"
ROOT = Path(__file__).resolve().parent.parent


def _payload(event: str, number: int) -> bytes:
    repository = {"full_name": "elsewhere/unwatched", "name": "unwatched", "id": 1}
    if event == "push":
        body = {
            "ref": "refs/heads/main",
            "after": hashlib.sha1(str(number).encode()).hexdigest(),  # noqa: S324 (an id)
            "repository": repository,
            "head_commit": {"id": f"{number:040x}", "message": f"Change {number}"},
            "commits": [{"id": f"{number:040x}", "message": f"Change {number}"}],
        }
    else:
        body = {
            "action": "synchronize",
            "number": number,
            "repository": repository,
            "pull_request": {
                "number": number,
                "title": f"Change {number}",
                "head": {"sha": f"{number:040x}", "ref": f"change-{number}"},
                "user": {"login": "octocat"},
                "draft": False,
                "labels": [],
            },
        }
    return json.dumps(body).encode()


def _requests(seed: int) -> list[tuple[str, str, bytes]]:
    """(delivery id, event, body): the originals in order, each replay a little after its
    original (so some replays race their original). Another seed, other delivery ids."""
    rng = random.Random(seed)
    originals = []
    for number in range(DELIVERIES):
        event = "push" if number % 2 else "pull_request"
        originals.append((str(uuid.UUID(int=rng.getrandbits(128))), event, _payload(event, number)))
    requests = list(originals)
    for _ in range(REPLAYS):
        index = rng.randrange(DELIVERIES)
        requests.insert(min(len(requests), index + rng.randint(1, 200)), originals[index])
    return requests


@dataclass
class Burst:
    seconds: float  # first request sent to last answer read
    p50_ms: float
    p99_ms: float
    answers: dict[str, int]  # "202 queued": n, "200 duplicate": n, ...
    generator_cpu_seconds: float  # the load generator's own CPU time (user + system)


def _burst(requests: list[tuple[str, str, bytes]], rate: float = 0) -> Burst:
    """Send ``requests``: as fast as they are answered, or ``rate`` a second when set."""
    if shutil.which("wrk"):
        return _burst_wrk(requests, rate)
    return _burst_httpx(requests, rate)


def _burst_wrk(requests: list[tuple[str, str, bytes]], rate: float) -> Burst:
    """wrk (C, WRK_THREADS threads) replaying the pre-signed requests through webhooks.lua."""
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "requests.tsv"
        with lines.open("w") as out:
            for delivery_id, event, body in requests:
                out.write(f"{delivery_id}\t{event}\t{_signature(body)}\t{body.decode()}\n")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk = subprocess.Popen(
            [
                "wrk",
                f"--threads={WRK_THREADS}",
                f"--connections={CONNECTIONS}",
                "--duration=600s",  # stopped with SIGINT once every answer is read
                "--timeout=30s",
                f"--script={ROOT / 'bench' / 'webhooks.lua'}",
                f"http://127.0.0.1:{PORT}",
                "--",
                str(lines),
                str(WRK_THREADS),
                tmp,
            ],
            env={**os.environ, "WEBHOOKS_RATE_PER_THREAD": str(rate / WRK_THREADS)}
            if rate
            else None,
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 600
        while len(list(Path(tmp).glob("done-*"))) < WRK_THREADS:
            if wrk.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("wrk stopped, or 10 minutes passed, before every answer")
            time.sleep(0.05)
        wrk.send_signal(signal.SIGINT)
        output, _ = wrk.communicate(timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(output.strip().splitlines()[-1])
    errors = {kind: count for kind, count in result["errors"].items() if count}
    if errors:
        raise RuntimeError(f"wrk saw errors {errors}; answers {result['answers']}")
    return Burst(
        seconds=result["seconds"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        answers=result["answers"],
        generator_cpu_seconds=(after.ru_utime + after.ru_stime)
        - (before.ru_utime + before.ru_stime),
    )


def _burst_httpx(requests: list[tuple[str, str, bytes]], rate: float) -> Burst:
    """Without wrk: an asyncio client in this process (httpx), itself a large CPU user."""
    started_cpu = time.process_time()
    seconds, latencies, answers = asyncio.run(_burst_async(requests, rate))
    return Burst(
        seconds=seconds,
        p50_ms=statistics.median(latencies),
        p99_ms=_percentile(latencies, 0.99),
        answers=answers,
        generator_cpu_seconds=time.process_time() - started_cpu,
    )


def _signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def _burst_async(
    requests: list[tuple[str, str, bytes]], rate: float
) -> tuple[float, list[float], dict]:
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    answers: dict[str, int] = {}
    url = f"http://127.0.0.1:{PORT}/webhooks/github"
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            delivery_id, event, body = queue.get_nowait()
            if rate:  # the n-th request taken is due n / rate seconds after the start
                due = started + (len(requests) - queue.qsize() - 1) / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            headers = {
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery_id,
                "X-Hub-Signature-256": _signature(body),
                "Content-Type": "application/json",
            }
            sent = time.perf_counter()
            response = await client.post(url, content=body, headers=headers)
            latencies.append((time.perf_counter() - sent) * 1000)
            status = response.json().get("status") if response.status_code < 300 else None
            key = f"{response.status_code} {status}"
            answers[key] = answers.get(key, 0) + 1

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(sender(client) for _ in range(CONNECTIONS)))
        seconds = time.perf_counter() - started
    return seconds, latencies, answers


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * fraction) - 1)]


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children still running, from /proc: the
    server's own cost per request, which other load on the machine does not inflate much."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for child in [pid, *_children(pid)]:
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_children(int(child))]
    return found


def _wait_healthy(process: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited while starting")
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /health within 60 s")


def _wipe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE approvals_auditevent DISABLE TRIGGER USER")
        cursor.execute(
            "TRUNCATE approvals_auditevent, approvals_auditchainhead, "
            "deployments_webhookdelivery RESTART IDENTITY CASCADE"
        )
        cursor.execute("ALTER TABLE approvals_auditevent ENABLE TRIGGER USER")


def run() -> str:
    from bench import celery_broker

    with celery_broker() as broker:
        return _run(broker)


def _run(broker: str) -> str:
    from django.conf import settings
    from django.db.models import Count

    from approvals.models import AuditEvent
    from bench import machine_markdown, process_env
    from deployments.models import WebhookDelivery

    _wipe()
    env = process_env(
        broker,
        GITHUB_WEBHOOK_SECRET=SECRET,
        HOST="127.0.0.1",
        PORT=str(PORT),
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    web_processes = int(env.get("WEB_CONCURRENCY", "2"))
    web_threads = int(env.get("WEB_THREADS", "4"))
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        access_log = Path(tmp) / "access.log"
        web = subprocess.Popen(
            [
                str(bin_dir / "gunicorn"),
                "--config",
                "gunicorn.conf.py",
                "--access-logfile",
                str(access_log),
                "hotdash.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        worker = subprocess.Popen(
            [
                str(bin_dir / "celery"),
                "-A",
                "hotdash",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "--hostname",
                f"bench-webhooks-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(web)
            requests, paced_requests = _requests(seed=19), _requests(seed=20)
            # Warm every gunicorn process and thread (imports, DB connections), not counted.
            _burst(_requests_for_warmup())
            load_before = os.getloadavg()[0]
            web_cpu_before, worker_cpu_before = _cpu_seconds(web.pid), _cpu_seconds(worker.pid)
            burst = _burst(requests)
            web_cpu = _cpu_seconds(web.pid) - web_cpu_before
            worker_cpu_in_burst = _cpu_seconds(worker.pid) - worker_cpu_before
            load_after = os.getloadavg()[0]
            burst_end = time.monotonic()
            processed_by = burst_end + WORKER_WAIT_SECONDS
            pending = WebhookDelivery.objects.filter(state=WebhookDelivery.State.RECEIVED)
            while pending.exists() and time.monotonic() < processed_by:
                time.sleep(0.5)
            drain_seconds = time.monotonic() - burst_end
            worker_cpu = _cpu_seconds(worker.pid) - worker_cpu_before
            burst_log_lines = len(_server_ms(access_log))
            paced = _burst(paced_requests, rate=PACED_RATE)
            paced_left = pending.count()
            processed_by = time.monotonic() + WORKER_WAIT_SECONDS
            while pending.exists() and time.monotonic() < processed_by:
                time.sleep(0.5)
            still_pending = pending.count()
        finally:
            web.terminate()
            worker.terminate()
            web.wait(30)
            worker.wait(60)
        server_ms = _server_ms(access_log)
    burst_server_ms = server_ms[burst_log_lines - len(requests) : burst_log_lines]
    paced_server_ms = server_ms[burst_log_lines:]
    bench_ids = {delivery_id for delivery_id, _event, _body in requests + paced_requests}
    rows = WebhookDelivery.objects.exclude(delivery_id__startswith="warmup-")
    stored = rows.count()
    twice = rows.values("delivery_id").annotate(n=Count("id")).filter(n__gt=1).count()
    missing = len(bench_ids - set(rows.values_list("delivery_id", flat=True)))
    audited = (
        AuditEvent.objects.filter(verb="webhook.received")
        .exclude(data__delivery_id__startswith="warmup-")
        .count()
    )
    accepted = burst.answers.get("202 queued", 0) + paced.answers.get("202 queued", 0)
    duplicates = burst.answers.get("200 duplicate", 0) + paced.answers.get("200 duplicate", 0)
    per_second = len(requests) / burst.seconds
    paced_per_second = len(paced_requests) / paced.seconds
    p50, p99 = burst.p50_ms, burst.p99_ms
    generator = (
        f"wrk ({WRK_THREADS} threads, Lua script bench/webhooks.lua replaying the requests "
        "signed beforehand)"
        if shutil.which("wrk")
        else "one asyncio process with httpx (wrk is not installed: `apt-get install wrk` "
        "for a load generator that leaves the cores to the server)"
    )
    exactly_once = (
        stored == 2 * DELIVERIES
        and twice == 0
        and missing == 0
        and audited == 2 * DELIVERIES
        and accepted == 2 * DELIVERIES
        and duplicates == 2 * REPLAYS
        and still_pending == 0
    )
    met = per_second >= 1000 and paced_per_second >= 0.98 * PACED_RATE and paced.p99_ms <= 50
    lines = [
        f"## Webhook ingest under gunicorn{' (quick size)' if quick() else ''}",
        "",
        machine_markdown(),
        "",
        f"Method: gunicorn with gunicorn.conf.py ({web_processes} processes × {web_threads} "
        "threads, gthread, access log on) and one Celery worker (prefork, concurrency 2, Redis "
        f"broker) on loopback; DEBUG off; PostgreSQL {settings.DATABASES['default']['NAME']}. "
        f"The load generator, {generator}, on the same 2 cores with {CONNECTIONS} keep-alive "
        f"connections, sends {DELIVERIES:,} signed deliveries (half "
        f"`push`, half `pull_request`, ~{len(requests[0][2])} bytes) and {REPLAYS:,} replays "
        "of earlier delivery ids mixed in, as fast as they are answered (the burst: its rate "
        f"is the throughput, its latency mostly the queue of {CONNECTIONS} requests always in "
        "flight), after a warm-up of 200 deliveries; once the worker has processed them, as "
        f"many new deliveries and replays at {PACED_RATE:,} a second (paced: each request "
        "at its scheduled time on a free connection). Client latency: send to response read; "
        "server latency: gunicorn's request time (ms resolution). 1-minute load average "
        f"{load_before:.1f} before the burst, {load_after:.1f} after.",
        "",
        "| Figure | Burst | Paced |",
        "| --- | ---: | ---: |",
        f"| Requests (deliveries + replays) | {len(requests):,} in {burst.seconds:.1f} s | "
        f"{len(paced_requests):,} in {paced.seconds:.1f} s |",
        f"| Requests per second | {per_second:,.0f} | {paced_per_second:,.0f} |",
        f"| Client latency p50 / p99 | {p50:.1f} / {p99:.1f} ms | "
        f"{paced.p50_ms:.1f} / {paced.p99_ms:.1f} ms |",
        f"| Server latency p50 / p99 | {_p50_p99(burst_server_ms)} ms | "
        f"{_p50_p99(paced_server_ms)} ms |",
        f"| Answers | {_answers(burst)} | {_answers(paced)} |",
        f"| Deliveries not yet processed when the last answer was read | | {paced_left:,} |",
        "",
        "| Figure (burst) | Value |",
        "| --- | ---: |",
        f"| Load generator's own CPU | {burst.generator_cpu_seconds:.1f} s "
        f"({burst.generator_cpu_seconds / burst.seconds:.0%} of one core) |",
        f"| gunicorn CPU per request (all processes) | {web_cpu / len(requests) * 1000:.2f} ms |",
        f"| Celery worker CPU during the burst | {worker_cpu_in_burst:.1f} s "
        f"({worker_cpu_in_burst / burst.seconds:.0%} of one core) |",
        f"| Worker done with the burst's deliveries | {drain_seconds:.1f} s after it |",
        f"| Celery worker CPU per delivery (burst start to all processed) | "
        f"{worker_cpu / DELIVERIES * 1000:.2f} ms |",
        "",
        "| Both phases | Value |",
        "| --- | ---: |",
        f"| Rows stored / stored twice / missing | {stored:,} / {twice} / {missing} |",
        f"| `webhook.received` audit events | {audited:,} |",
        f"| Left unprocessed at the end | {still_pending:,} |",
        "",
        f"webhooks: {per_second:,.0f} deliveries/s (burst, p99 {p99:.1f} ms); at "
        f"{paced_per_second:,.0f}/s paced p99 {paced.p99_ms:.1f} ms (target ≥ 1,000/s and "
        f"≤ 50 ms: {'met' if met else 'MISSED'}); exactly once: {'yes' if exactly_once else 'NO'}",
    ]
    return "\n".join(lines)


def _server_ms(access_log: Path) -> list[float]:
    return [
        float(match)
        for match in re.findall(
            r'"POST /webhooks/github HTTP/1.1" \d+ \d+ (\d+)ms', access_log.read_text()
        )
    ]


def _p50_p99(samples_ms: list[float]) -> str:
    if not samples_ms:
        return "n/a"
    return f"{statistics.median(samples_ms):.0f} / {_percentile(samples_ms, 0.99):.0f}"


def _answers(burst: Burst) -> str:
    return ", ".join(f"{key}: {n:,}" for key, n in sorted(burst.answers.items()))


def _requests_for_warmup() -> list[tuple[str, str, bytes]]:
    return [(f"warmup-{n}", "push", _payload("push", n)) for n in range(200)]
