"""The Audit page at a million events: keyset pages vs the admin changelist, and export memory.

Seeds (once; reused while the counts match) 1,000,000 audit events with a valid keyed hash
chain, written with PostgreSQL COPY, and 10,000 deploys. Then, in one run, times 200 requests
each through the Django test client (server time in-process: view, ORM, PostgreSQL, template)
for the Audit page and the Django admin changelist of the same table, and the bare SQL of
each Audit query; and measures the process's peak RSS growth while streaming a
1,000,000-row export.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from bench import quick

# BENCH_AUDIT_EVENTS shrinks the run for a quick smoke test; the recorded figures use 1M.
EVENTS = int(os.environ.get("BENCH_AUDIT_EVENTS", "100000" if quick() else "1000000"))
DEPLOYS = 10_000
RUNS = 200
APPS = ("shop", "blog", "api", "billing", "search")
ENVIRONMENTS = ("production", "staging")
# (verb, weight, actor kind, data key or "")
VERBS = (
    ("deploy.requested", 8, "user", "reason"),
    ("deploy.queued", 8, "user", ""),
    ("deploy.started", 8, "worker", ""),
    ("deploy.machine_updated", 30, "worker", ""),
    ("deploy.verifying", 8, "worker", ""),
    ("deploy.succeeded", 7, "worker", ""),
    ("deploy.failed", 1, "worker", ""),
    ("approval.requested", 5, "user", ""),
    ("approval.approved", 5, "user", "comment"),
    ("approval.rejected", 1, "user", "comment"),
    ("webhook.received", 10, "github", ""),
    ("auth.login", 6, "user", ""),
    ("auth.login_failed", 1, "anonymous", ""),
    ("environment.locked", 0.2, "user", "reason"),
    ("environment.unlocked", 0.2, "user", "reason"),
    ("admin.changed", 0.3, "user", "change_message"),
)
WORDS = [
    "fix",
    "checkout",
    "latency",
    "rollback",
    "hotfix",
    "release",
    "migrate",
    "cache",
    "warmup",
    "feature",
    "flag",
    "payments",
    "search",
    "index",
    "timeout",
    "retry",
    "incident",
    "customer",
    "dashboard",
    "banner",
    "cleanup",
    "upgrade",
    "postgres",
    "redis",
    "worker",
    "memory",
    "leak",
    "regression",
    "canary",
]


def _texts(rng: random.Random) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
    if rng.random() < 0.05:
        text += f" incident {rng.randint(1000, 9999)}"
    return text.capitalize()


def _seed_needed() -> bool:
    from approvals.models import AuditChainHead, AuditEvent
    from deployments.models import Deploy

    head = AuditChainHead.objects.filter(id=1).first()
    return not (
        head
        and head.last_event_id >= EVENTS
        and AuditEvent.objects.filter(id=EVENTS).exists()
        and Deploy.objects.count() == DEPLOYS
    )


def _wipe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE approvals_auditevent DISABLE TRIGGER USER")
        cursor.execute(
            "TRUNCATE approvals_auditevent, approvals_auditchainhead, "
            "approvals_auditverification, deployments_deploy, deployments_release, "
            "deployments_environment, deployments_app CASCADE"
        )
        cursor.execute("ALTER TABLE approvals_auditevent ENABLE TRIGGER USER")


def _seed_world(rng: random.Random) -> tuple[list[tuple[int, str, str]], list[Any]]:
    """Users, apps, environments, releases and DEPLOYS deploys; returns (deploy id, app, env)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from deployments.models import App, Deploy, Environment, Release

    user_model = get_user_model()
    users = []
    for n in range(40):
        user, _ = user_model.objects.get_or_create(username=f"user-{n:02d}")
        users.append(user)
    viewer, _ = user_model.objects.get_or_create(username="bench-viewer")
    viewer.groups.add(Group.objects.get(name="viewer"))
    user_model.objects.filter(username="bench-admin").delete()
    user_model.objects.create_superuser("bench-admin", "admin@example.com", None)

    start = timezone.now() - timedelta(days=730)
    environments = []
    for app_name in APPS:
        app = App.objects.create(
            name=app_name, github_owner="acme", github_repo=app_name, fly_org="acme"
        )
        releases = [
            Release.objects.create(app=app, version=f"1.{n}.0", tag=f"v1.{n}.0") for n in range(20)
        ]
        for env_name in ENVIRONMENTS:
            environment = Environment.objects.create(
                app=app,
                name=env_name,
                kind=env_name,
                fly_app_name=f"{app_name}-{env_name}",
            )
            environments.append((environment, releases))
    deploys = []
    for n in range(DEPLOYS):
        environment, releases = environments[n % len(environments)]
        deploys.append(
            Deploy(
                environment=environment,
                release=rng.choice(releases),
                state=Deploy.State.SUCCEEDED,
                requested_by=rng.choice(users),
                reason=_texts(rng),
                created_at=start + timedelta(minutes=n * 100),
            )
        )
    Deploy.objects.bulk_create(deploys, batch_size=2000)
    described = [
        (deploy.pk, deploy.environment.app.name, deploy.environment.name) for deploy in deploys
    ]
    return described, users


def _events(rng: random.Random, deploys, users) -> Iterator[tuple]:
    """EVENTS rows in chain order, each hashed exactly as approvals.audit.record hashes."""
    from django.utils import timezone

    from approvals.audit import GENESIS_HASH, compute_hash, search_text_of

    verbs = list(VERBS)
    weights = [verb[1] for verb in VERBS]
    start = timezone.now() - timedelta(days=730)
    step = timedelta(days=729) / EVENTS
    prev_hash = GENESIS_HASH
    for event_id in range(1, EVENTS + 1):
        verb, _weight, actor_kind, data_key = rng.choices(verbs, weights)[0]
        deploy_id, app_name, env_name = deploys[(event_id * 7) // 701 % len(deploys)]
        if actor_kind == "user":
            user = rng.choice(users)
            actor = ("user", user.pk, user.username)
        elif actor_kind == "anonymous":
            actor = ("anonymous", None, "anonymous")
        else:
            actor = (actor_kind, None, actor_kind)
        if verb.startswith(("auth.", "admin.")):
            target = ("user", str(actor[1] or ""), actor[2]) if actor[1] else ("", "", "")
            scope = ("", "")
        else:
            target = ("deploy", str(deploy_id), f"Deploy #{deploy_id}")
            scope = (app_name, env_name)
        data = {data_key: _texts(rng)} if data_key else {}
        if verb == "auth.login_failed":
            data = {"username": f"user-{rng.randint(0, 60):02d}"}
        fields = {
            "id": event_id,
            "created_at": start + step * event_id,
            "actor_type": actor[0],
            "actor_user_id": actor[1],
            "actor_name": actor[2],
            "verb": verb,
            "target_type": target[0],
            "target_id": target[1],
            "target_repr": target[2],
            "app_name": scope[0],
            "environment_name": scope[1],
            "data": data,
            "ip": f"10.0.{event_id % 200}.{event_id % 250 + 1}" if actor[0] == "user" else None,
            "prev_hash": prev_hash,
        }
        fields["hash"] = prev_hash = compute_hash(fields)
        fields["search_text"] = search_text_of(data)
        fields["data"] = json.dumps(data)
        yield tuple(fields.values())


COLUMNS = (
    "id, created_at, actor_type, actor_user_id, actor_name, verb, target_type, target_id, "
    "target_repr, app_name, environment_name, data, ip, prev_hash, hash, search_text"
)


def _seed() -> str:
    from django.db import connection, transaction

    from approvals.models import AuditChainHead, AuditEvent

    rng = random.Random(7)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")  # the COPY and VACUUM outlast the 30 s cap
    _wipe()
    with transaction.atomic():
        deploys, users = _seed_world(rng)
        with connection.cursor() as cursor:
            copy_sql = f"COPY approvals_auditevent ({COLUMNS}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for row in _events(rng, deploys, users):
                    copy.write_row(row)
        last = AuditEvent.objects.only("hash").get(id=EVENTS)
        AuditChainHead.objects.update_or_create(
            id=1, defaults={"last_event_id": EVENTS, "last_hash": last.hash}
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE approvals_auditevent")
        cursor.execute("ANALYZE deployments_deploy")
        cursor.execute("RESET statement_timeout")
    return f"{time.perf_counter() - started:.0f} s"


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])


def _export_memory(client: Any, url: str) -> tuple[int, float, float]:
    """Rows streamed, seconds, and peak RSS growth in MB while streaming ``url``."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM (peak RSS) to the current RSS
    before = _rss_kb("VmRSS")
    started = time.perf_counter()
    response = client.get(url)
    lines = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    return lines, seconds, (_rss_kb("VmHWM") - before) / 1024


def run() -> str:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from approvals.audit import verify
    from approvals.selectors_audit import PAGE_FIELDS, PAGE_SIZE, AuditFilters, audit_event_filter
    from bench import interleaved_timings

    seeded = _seed() if _seed_needed() else "reused from an earlier run"
    from django.conf import settings
    from django.contrib import admin as django_admin
    from django.contrib.auth import get_user_model
    from django.template import engines

    from approvals.models import AuditEvent

    # Measure what production runs: DEBUG off, so templates come from Django's cached loader
    # (wrapped by django-template-partials' loader).
    loaders = list(engines["django"].engine.template_loaders)
    kinds = set()
    while loaders:
        loader = loaders.pop()
        kinds.add(type(loader).__module__)
        loaders += getattr(loader, "loaders", [])
    assert not settings.DEBUG and "django.template.loaders.cached" in kinds, kinds
    # Compare equal pages: the admin lists 100 rows by default, the Audit page PAGE_SIZE.
    django_admin.site.get_model_admin(AuditEvent).list_per_page = PAGE_SIZE

    users = get_user_model().objects
    viewer, admin = Client(), Client()
    viewer.force_login(users.get(username="bench-viewer"))
    admin.force_login(users.get(username="bench-admin"))

    deep = 101  # ?before=101: the 20,000th page of 50 rows
    filtered_deep = 200_001
    scenarios = [
        ("Audit, first page", "/audit/", AuditFilters(), None),
        ("Audit, deep cursor (page ~20,000)", f"/audit/?before={deep}", AuditFilters(), deep),
        (
            "Audit, filtered: verb prefix + app + environment",
            "/audit/?verb=deploy.&app=shop&environment=production",
            AuditFilters(verb="deploy.", app="shop", environment="production"),
            None,
        ),
        (
            "Audit, same filter, deep cursor",
            f"/audit/?verb=deploy.&app=shop&environment=production&before={filtered_deep}",
            AuditFilters(verb="deploy.", app="shop", environment="production"),
            filtered_deep,
        ),
        (
            "Audit, filtered: actor + exact verb",
            "/audit/?actor=user-07&verb=approval.approved",
            AuditFilters(actor="user-07", verb="approval.approved"),
            None,
        ),
        (
            "Audit, free text (rare: 'incident 4242')",
            "/audit/?q=incident+4242",
            AuditFilters(text="incident 4242"),
            None,
        ),
        (
            "Audit, free text + environment lock verb",
            "/audit/?q=incident&verb=environment.",
            AuditFilters(text="incident", verb="environment."),
            None,
        ),
    ]
    admin_scenarios = [
        ("Admin changelist, first page", "/admin/approvals/auditevent/"),
        (
            "Admin changelist, page 2000",
            f"/admin/approvals/auditevent/?p={min(2000, EVENTS // 100)}",
        ),
    ]
    load_before = os.getloadavg()[0]
    # Every page once per round, Audit and admin alike (see interleaved_timings).
    pages = [(viewer, url) for _label, url, _filters, _before in scenarios]
    pages += [(admin, url) for _label, url in admin_scenarios]
    queries = []
    for client, url in pages:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        queries.append(len(captured))
    page_timings = interleaved_timings([_getter(client, url) for client, url in pages], runs=RUNS)
    rows = []
    for index, (label, _url, filters, before) in enumerate(scenarios):
        events = audit_event_filter(filters).values_list(*PAGE_FIELDS)
        if before:
            events = events.filter(id__lt=before)
        sql, params = events.order_by("-id")[: PAGE_SIZE + 1].query.sql_with_params()
        rows.append((label, page_timings[index], queries[index], _time_sql(sql, params)))
    admin_rows = [
        (label, page_timings[len(scenarios) + index], queries[len(scenarios) + index])
        for index, (label, _url) in enumerate(admin_scenarios)
    ]
    max_queries = max(queries[: len(scenarios)])
    load_after = os.getloadavg()[0]

    csv_rows, csv_seconds, csv_mb = _export_memory(viewer, "/audit/export.csv")
    jsonl_rows, jsonl_seconds, jsonl_mb = _export_memory(viewer, "/audit/export.jsonl")
    verify_started = time.perf_counter()
    verified = verify()
    verify_seconds = time.perf_counter() - verify_started

    from bench import machine_markdown

    first, deep_page = rows[0][1], rows[1][1]
    first_admin, deep_admin = admin_rows[0][1], admin_rows[1][1]
    ratios = [
        first_admin.median_ms / first.median_ms,
        first_admin.p95_ms / first.p95_ms,
        deep_admin.median_ms / deep_page.median_ms,
        deep_admin.p95_ms / deep_page.p95_ms,
    ]
    lines = [
        "## Audit log at 1,000,000 events",
        "",
        machine_markdown(),
        "",
        f"Data: {EVENTS:,} audit events (valid keyed hash chain, seeded with COPY) and "
        f"{DEPLOYS:,} deploys on PostgreSQL; seeding: {seeded}. Each figure is the server "
        f"time of {RUNS} requests through the Django test client (in-process: middleware, "
        "session, view, ORM, PostgreSQL, templates, the shared layout with its "
        "pending-approvals badge), after 5 warm-up requests; the pages take turns (one "
        "request to each Audit and admin page per round), so other load on the machine falls "
        "on all of them alike. DEBUG is off, i.e. the "
        "production template loader (Django's cached loader; the benchmark asserts it). "
        f"Both pages list {PAGE_SIZE} rows: the Audit page's PAGE_SIZE, and the admin "
        f"changelist set to list_per_page = {PAGE_SIZE} for this run (its default is 100), so "
        f"admin page 2000 starts at row {(2000 - 1) * PAGE_SIZE + 1:,}. Bare SQL: the Audit "
        f"page's own query (LIMIT {PAGE_SIZE + 1}) run on a cursor. 1-minute load average: "
        f"{load_before:.1f} before the timed requests, {load_after:.1f} after.",
        "",
        "| View | median ms | p95 ms | queries/page | bare SQL median / p95 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, timing, queries, bare in rows:
        lines.append(
            f"| {label} | {timing.median_ms:.1f} | {timing.p95_ms:.1f} | {queries} "
            f"| {bare.median_ms:.2f} / {bare.p95_ms:.2f} |"
        )
    for label, timing, queries in admin_rows:
        lines.append(f"| {label} | {timing.median_ms:.1f} | {timing.p95_ms:.1f} | {queries} | — |")
    worst = max(timing.p95_ms for _label, timing, _queries, _bare in rows)
    lines += [
        "",
        f"- Worst Audit p95: {worst:.1f} ms (target < 20 ms: {'met' if worst < 20 else 'MISSED'}).",
        f"- Admin changelist / Audit, first page: {ratios[0]:.1f}× (median), {ratios[1]:.1f}× "
        f"(p95); admin page 2000 / Audit deep cursor: {ratios[2]:.1f}× (median), "
        f"{ratios[3]:.1f}× (p95) (target ≥ 10×: {'met' if min(ratios) >= 10 else 'MISSED'}).",
        f"- Queries per Audit page: at most {max_queries} (target ≤ 8), the same at any depth.",
        f"- Export of the whole log: CSV {csv_rows - 1:,} rows in {csv_seconds:.0f} s, peak RSS "
        f"growth {csv_mb:.1f} MB; JSON Lines {jsonl_rows:,} rows in {jsonl_seconds:.0f} s, peak "
        f"RSS growth {jsonl_mb:.1f} MB (target ≤ 50 MB). Measured as VmHWM after resetting it "
        "(/proc/self/clear_refs) minus VmRSS before, while iterating the streamed response.",
        f"- `audit_verify` over the seeded chain: {verified.summary()} in {verify_seconds:.0f} s.",
        "",
        "Method notes: pages are keyset (`id < cursor ORDER BY id DESC LIMIT 51`), so depth "
        "costs nothing; the admin counts the table and uses OFFSET. Free text searches the "
        "lower-cased `search_text` column (reason, comment, override reason, admin change "
        "message) with LIKE, served by one pg_trgm GIN index over (verb, search_text), so a "
        "verb prefix narrows a common word inside the index. The Audit rows are built in "
        "Python (escaped) and the filter inputs are plain template markup: per-row template "
        "nodes and Django's widget templates were most of the page's time.",
        "",
    ]
    return "\n".join(lines)


def _getter(client: Any, url: str) -> Callable[[], None]:
    def get() -> None:
        response = client.get(url)
        assert response.status_code == 200

    return get


def _time_sql(sql: str, params: tuple):
    from django.db import connection

    from bench import timings

    def query() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()

    return timings(query, runs=RUNS)
