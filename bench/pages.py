"""Every nav and detail page at fleet scale, first and deep page, next to the Django admin.

Seeds (once; reused while the sizes match) a generated fleet on PostgreSQL: APPS apps with
three long-lived environments each (production, staging, qa), RELEASES releases, PREVIEWS
pull-request previews, DEPLOYS deploys (one in 97 a rollback, the newest few awaiting
approval) with five plan steps and five log lines each, and EVENTS audit events. The small
tables are bulk-created through the ORM; the big ones are generated inside PostgreSQL
(``INSERT ... SELECT ... FROM generate_series``, copying every other column from one row made
through the ORM, so the rows are what the models write). Audit hashes are random: the pages
never re-verify the chain.

Then, in one run, each page is requested RUNS times through the Django test client (server
time in-process: middleware, session, view, ORM, PostgreSQL, templates), all pages taking
turns, with the number of queries of each.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bench import quick

SCALE = 10 if quick() else 1
APPS = 200 // SCALE
ENVIRONMENT_NAMES = (("production", "production"), ("staging", "staging"), ("qa", "staging"))
RELEASES = 10_000 // SCALE
PREVIEWS = 5_000 // SCALE
DEPLOYS = 100_000 // SCALE
STEPS_PER_DEPLOY = 5
LOGS_PER_DEPLOY = 5
EVENTS = 1_000_000 // SCALE
AWAITING = 30
USERS = 40
RUNS = 20 if quick() else 100


def _sizes() -> dict[str, int]:
    from approvals.models import AuditEvent
    from deployments.models import App, Deploy, DeployLog, DeployStep, Preview, Release

    return {
        "apps": App.objects.count(),
        "releases": Release.objects.count(),
        "previews": Preview.objects.count(),
        "deploys": Deploy.objects.count(),
        "steps": DeployStep.objects.count(),
        "logs": DeployLog.objects.count(),
        # Not the sign-ins of the two users the pages are requested as (each run adds them).
        "events": AuditEvent.objects.exclude(
            verb="auth.login", actor_name__in=("bench-viewer", "bench-admin")
        ).count(),
    }


WANTED = {
    "apps": APPS,
    "releases": RELEASES,
    "previews": PREVIEWS,
    "deploys": DEPLOYS,
    "steps": DEPLOYS * STEPS_PER_DEPLOY,
    "logs": DEPLOYS * LOGS_PER_DEPLOY,
    "events": EVENTS,
}


def _wipe() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE approvals_auditevent DISABLE TRIGGER USER")
        cursor.execute(
            "TRUNCATE approvals_auditevent, approvals_auditchainhead, approvals_decision, "
            "approvals_approvalrequest, deployments_deploylog, deployments_deploystep, "
            "deployments_deploy, deployments_preview, deployments_release, "
            "deployments_environment, deployments_app RESTART IDENTITY CASCADE"
        )
        cursor.execute("ALTER TABLE approvals_auditevent ENABLE TRIGGER USER")


def _generate(
    table: str, template_id: int, count: int, computed: dict[str, str], **params: Any
) -> None:
    """Insert ``count`` copies of row ``template_id`` of ``table``, numbered g = 1..count in id
    order, with the ``computed`` columns set to SQL expressions of g (and of ``params``, as
    ``%(name)s``); then delete the template."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE false")  # noqa: S608 (our table names)
        columns = [column.name for column in cursor.description if column.name != "id"]
        values = ", ".join(computed.get(column, f"t.{column}") for column in columns)
        # The expressions' modulo signs are not placeholders; their %(name)s are.
        values = re.sub(r"%%\((\w+)\)s", r"%(\1)s", values.replace("%", "%%"))
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} "  # noqa: S608
            f"FROM {table} t, generate_series(1, %(count)s) g WHERE t.id = %(template)s "
            "ORDER BY g",
            {**params, "count": count, "template": template_id},
        )
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [template_id])  # noqa: S608


def _seed() -> str:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from approvals.models import ApprovalRequest, AuditChainHead, AuditEvent
    from deployments.models import App, Deploy, DeployLog, DeployStep, Environment, Preview, Release

    started = time.perf_counter()
    user_model = get_user_model()
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")  # the settings' limit is for requests
    _wipe()
    with transaction.atomic():
        user_model.objects.filter(username__startswith="bench-").delete()
        users = [user_model.objects.create_user(f"bench-user-{n:02d}") for n in range(USERS)]
        user_model.objects.create_user("bench-viewer").groups.add(Group.objects.get(name="viewer"))
        user_model.objects.create_superuser("bench-admin", "admin@example.com", None)
        user_ids = f"ARRAY[{', '.join(str(user.pk) for user in users)}]"
        now = timezone.now()
        start = now - timedelta(days=730)
        App.objects.bulk_create(
            App(
                name=f"app-{n:03d}", github_owner="acme", github_repo=f"app-{n:03d}", fly_org="acme"
            )
            for n in range(APPS)
        )
        per_app = RELEASES // APPS
        Release.objects.bulk_create(
            Release(
                app_id=app_id,
                version=f"1.{n}.0",
                tag=f"v1.{n}.0",
                title=f"Release 1.{n}.0",
                published_at=start + timedelta(days=n * 700 / per_app),
            )
            for app_id in range(1, APPS + 1)
            for n in range(per_app)
        )
        Environment.objects.bulk_create(
            Environment(
                app_id=app_id,
                name=name,
                kind=kind,
                fly_app_name=f"app-{app_id:03d}-{name}",
                machine_count=2,
                current_release_id=app_id * per_app,
                health=Environment.Health.HEALTHY,
            )
            for app_id in range(1, APPS + 1)
            for name, kind in ENVIRONMENT_NAMES
        )
        per_app_previews = PREVIEWS // APPS
        Preview.objects.bulk_create(
            Preview(
                app_id=app_id,
                pr_number=n + 1,
                pr_title=f"Change number {n + 1}",
                pr_author="octocat",
                branch=f"change-{n + 1}",
                head_sha=f"{n:040x}",
                state=Preview.State.DESTROYED if n < per_app_previews - 2 else Preview.State.FAILED,
                created_at=start + timedelta(days=n),
                updated_at=start + timedelta(days=n),
                destroyed_at=start + timedelta(days=n + 1),
            )
            for app_id in range(1, APPS + 1)
            for n in range(per_app_previews)
        )
        environments = APPS * len(ENVIRONMENT_NAMES)
        template = Deploy.objects.create(
            environment_id=1,
            release_id=1,
            state=Deploy.State.SUCCEEDED,
            requested_by=users[0],
            reason="Routine release",
            health_verified=True,
        )
        interval = 700 * 86400 / DEPLOYS
        _generate(
            "deployments_deploy",
            template.pk,
            DEPLOYS,
            {
                "environment_id": f"1 + g % {environments}",
                "release_id": f"((g % {environments}) / 3) * {per_app} + 1 "
                f"+ (g / {environments}) % {per_app}",
                "kind": "CASE WHEN g % 97 = 0 THEN 'rollback' ELSE 'deploy' END",
                "state": f"CASE WHEN g > {DEPLOYS - AWAITING} THEN 'awaiting_approval' "
                "WHEN g % 50 = 0 THEN 'failed' ELSE 'succeeded' END",
                "requested_by_id": f"({user_ids})[1 + g % {USERS}]",
                "reason": "'Release ' || g || ' for the ' || (ARRAY['checkout', 'search', "
                "'billing', 'login'])[1 + g % 4] || ' change'",
                "created_at": f"%(start)s + make_interval(secs => g * {interval})",
                "queued_at": f"%(start)s + make_interval(secs => g * {interval} + 1)",
                "started_at": f"%(start)s + make_interval(secs => g * {interval} + 2)",
                "finished_at": f"%(start)s + make_interval(secs => g * {interval} + 95)",
            },
            start=start,
        )
        first_deploy = template.pk + 1
        step = DeployStep.objects.create(
            deploy_id=first_deploy, position=999, kind=DeployStep.Kind.UPDATE_BATCH, title="Step"
        )
        kinds = "ARRAY['verify_artifact', 'github_deployment', 'update_batch', 'verify', " + (
            "'github_status']"
        )
        titles = "ARRAY['Verify artifact', 'Create GitHub deployment', 'Update 2 machines', " + (
            "'Verification window', 'Report to GitHub']"
        )
        _generate(
            "deployments_deploystep",
            step.pk,
            DEPLOYS * STEPS_PER_DEPLOY,
            {
                "deploy_id": f"{first_deploy} + (g - 1) / {STEPS_PER_DEPLOY}",
                "position": f"(g - 1) % {STEPS_PER_DEPLOY}",
                "kind": f"({kinds})[1 + (g - 1) % {STEPS_PER_DEPLOY}]",
                "title": f"({titles})[1 + (g - 1) % {STEPS_PER_DEPLOY}]",
                "state": "'done'",
            },
        )
        log = DeployLog.objects.create(deploy_id=first_deploy, message="Log")
        _generate(
            "deployments_deploylog",
            log.pk,
            DEPLOYS * LOGS_PER_DEPLOY,
            {
                "deploy_id": f"{first_deploy} + (g - 1) / {LOGS_PER_DEPLOY}",
                "message": "'Machine ' || g || ' updated to the new image and passed its checks'",
            },
        )
        approvals = Deploy.objects.filter(state=Deploy.State.AWAITING_APPROVAL)
        ApprovalRequest.objects.bulk_create(
            ApprovalRequest(deploy=deploy, expires_at=now + timedelta(days=1))
            for deploy in approvals
        )
        event = AuditEvent.objects.create(
            actor_type="user", actor_name="bench-user-00", verb="deploy.requested", prev_hash="0"
        )
        verbs = "ARRAY['deploy.requested', 'deploy.queued', 'deploy.started', " + (
            "'deploy.machine_updated', 'deploy.succeeded', 'approval.approved', "
            "'webhook.received', 'auth.login']"
        )
        cursor = connection.cursor()
        # The append-only trigger refuses deleting the template row.
        cursor.execute("ALTER TABLE approvals_auditevent DISABLE TRIGGER USER")
        _generate(
            "approvals_auditevent",
            event.pk,
            EVENTS,
            {
                "created_at": f"%(start)s + make_interval(secs => g * {700 * 86400 / EVENTS})",
                "actor_name": f"'bench-user-' || lpad((g % {USERS})::text, 2, '0')",
                "verb": f"({verbs})[1 + g % 8]",
                "target_type": "'deploy'",
                "target_id": f"(1 + g % {DEPLOYS})::text",
                "target_repr": f"'Deploy #' || (1 + g % {DEPLOYS})",
                "app_name": f"'app-' || lpad(((g % {environments}) / 3)::text, 3, '0')",
                "environment_name": "(ARRAY['production', 'staging', 'qa'])[1 + g % 3]",
                "prev_hash": "md5(g::text) || md5((g + 1)::text)",
                "hash": "md5((g + 1)::text) || md5(g::text)",
            },
            start=start,
        )
        cursor.execute("ALTER TABLE approvals_auditevent ENABLE TRIGGER USER")
        last = AuditEvent.objects.order_by("-id").first()
        AuditChainHead.objects.update_or_create(
            id=1, defaults={"last_event_id": last.pk, "last_hash": last.hash}
        )
    with connection.cursor() as cursor:
        for table in (
            "approvals_auditevent",
            "deployments_deploy",
            "deployments_deploystep",
            "deployments_deploylog",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute("RESET statement_timeout")
    return f"{time.perf_counter() - started:.0f} s"


def run() -> str:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench import interleaved_timings, machine_markdown
    from deployments.models import Deploy, Environment, Preview, Release

    seeded = "reused from an earlier run" if _sizes() == WANTED else _seed()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh planner statistics, as autovacuum keeps them
    assert not settings.DEBUG
    users = get_user_model().objects
    viewer, admin = Client(), Client()
    viewer.force_login(users.get(username="bench-viewer"))
    admin.force_login(users.get(username="bench-admin"))

    deploys = Deploy.objects.order_by("id").values_list("id", flat=True)
    oldest_deploy, newest_deploy = deploys.first(), deploys.last()
    releases = Release.objects.order_by("id").values_list("id", flat=True)
    previews = Preview.objects.order_by("id").values_list("id", flat=True)
    environment = Environment.objects.order_by("id").values_list("id", flat=True)
    deep_cursor = oldest_deploy + 100
    last_app = f"app-{APPS - 1:03d}"
    # (page, first-page URL, deep-page URL or "", admin changelist of the same model or "")
    pages = [
        ("Overview", "/", f"/?q={last_app}", "/admin/deployments/app/"),
        ("Releases", "/releases/", f"/releases/?app={last_app}", "/admin/deployments/release/"),
        ("A release", f"/releases/{releases.last()}/", f"/releases/{releases.first()}/", ""),
        ("Previews", "/previews/", "", "/admin/deployments/preview/"),
        ("A preview", f"/previews/{previews.last()}/", f"/previews/{previews.first()}/", ""),
        ("Deploys", "/deploys/", f"/deploys/?before={deep_cursor}", "/admin/deployments/deploy/"),
        (
            "Deploys, filtered (app + state)",
            f"/deploys/?app={last_app}&state=succeeded",
            f"/deploys/?app={last_app}&state=succeeded&before={deep_cursor + 5000 // SCALE}",
            "",
        ),
        ("A deploy", f"/deploys/{newest_deploy}/", f"/deploys/{oldest_deploy}/", ""),
        (
            "An environment",
            f"/environments/{environment.last()}/",
            f"/environments/{environment.first()}/",
            "/admin/deployments/environment/",
        ),
        ("Approvals", "/approvals/", "", ""),
        ("Rollbacks", "/rollbacks/", f"/rollbacks/?environment={environment.first()}", ""),
        ("Audit", "/audit/", "/audit/?before=101", "/admin/approvals/auditevent/"),
        ("Ops", "/ops/", "", ""),
        ("Runbook", "/ops/runbook/", f"/ops/runbook/?page={APPS // 20}", ""),
        ("An app's runbook", "/ops/runbook/app-000/", f"/ops/runbook/{last_app}/", ""),
    ]
    requests: list[tuple[str, Client, str]] = []
    for label, first, deep, changelist in pages:
        requests.append((f"{label}, first page", viewer, first))
        if deep:
            requests.append((f"{label}, deep page", viewer, deep))
        if changelist:
            requests.append((f"{label}: admin changelist", admin, changelist))
            requests.append(
                (f"{label}: admin changelist, last page", admin, _last_page(changelist))
            )
    queries = []
    for _label, client, url in requests:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        queries.append(len(captured))
    load_before = os.getloadavg()
    timings = interleaved_timings(
        [_getter(client, url) for _label, client, url in requests], runs=RUNS
    )
    load_after = os.getloadavg()
    ours = [
        (timing, count)
        for (label, _client, _url), timing, count in zip(requests, timings, queries, strict=True)
        if "admin" not in label
    ]
    worst = max(timing.p95_ms for timing, _count in ours)
    most_queries = max(count for _timing, count in ours)
    lines = [
        f"## Pages at fleet scale{' (quick size)' if quick() else ''}",
        "",
        machine_markdown(),
        "",
        f"Data (generated on PostgreSQL, seeding: {seeded}): {APPS:,} apps, "
        f"{APPS * len(ENVIRONMENT_NAMES):,} environments, {RELEASES:,} releases, "
        f"{PREVIEWS:,} previews, {DEPLOYS:,} deploys with {STEPS_PER_DEPLOY} steps and "
        f"{LOGS_PER_DEPLOY} log lines each, {EVENTS:,} audit events. Each figure is the server "
        f"time of {RUNS} requests through the Django test client (in-process: middleware, "
        "session, view, ORM, PostgreSQL, templates), after 5 warm-up requests, every page "
        "taking turns (one request to each per round) so that other load on the machine "
        "falls on all alike. DEBUG off (the cached template loader). Deep pages: the oldest "
        "deploy, release, preview and environment; a deploy-history cursor 100 deploys from "
        "the oldest; the Audit page 100 events from the oldest; the last app by name. The "
        "admin changelists are at their first page and at their last page (?p=N). "
        "1-minute load average: "
        f"{load_before[0]:.1f} before the timed requests, {load_after[0]:.1f} after.",
        "",
        "| Page | URL | median ms | p95 ms | queries |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (label, _client, url), timing, count in zip(requests, timings, queries, strict=True):
        lines.append(
            f"| {label} | `{url}` | {timing.median_ms:.1f} | {timing.p95_ms:.1f} | {count} |"
        )
    lines += [
        "",
        f"pages: worst p95 {worst:.1f} ms over {len(ours)} HotDash pages (target ≤ 15 ms: "
        f"{'met' if worst <= 15 else 'MISSED'}), at most {most_queries} queries per page",
    ]
    return "\n".join(lines)


def _getter(client: Any, url: str) -> Callable[[], None]:
    def get() -> None:
        response = client.get(url)
        assert response.status_code == 200

    return get


def _last_page(changelist: str) -> str:
    """The admin changelist URL of its last page."""
    from django.apps import apps
    from django.contrib import admin

    app_label, model_name = changelist.strip("/").split("/")[1:3]
    model = apps.get_model(app_label, model_name)
    per_page = admin.site.get_model_admin(model).list_per_page
    return f"{changelist}?p={max(1, -(-model.objects.count() // per_page))}"
