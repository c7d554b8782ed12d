"""Each check flipped in the sandbox (or the database) fails with its reason, with exactly one
notification and one audit event; staying failed sends nothing more; flipped back, it passes
with one "fixed" notification."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from approvals.models import ApprovalRequest, AuditEvent
from deployments.engine.desired import declared_config, machine_config
from deployments.models import (
    ComplianceRun,
    Deploy,
    DeployStep,
    Environment,
    Notification,
    Preview,
    WebhookDelivery,
)
from deployments.services.compliance import compliance_sweep
from hotdash.integrations.fly import fly_client
from hotdash.sandbox import demo
from tests.audit.tampering import TABLE, guard_lifted
from tests.compliance.conftest import (
    check,
    configure_as_declared,
    notifications,
    sandbox_now,
    statuses,
)
from tests.compliance.multi import make_apps

AS_SEEDED = {
    "branch_protection": "pass",
    "recent_ci": "warn",  # the optional codecov/patch fails on main
    "repository_security": "pass",
    "secrets_inventory": "pass",
    "secret_parity": "pass",
    "rotation": "fail",  # FLY_API_TOKEN is 120 days old
    "machine_drift": "pass",
    "orphans_and_stuck_work": "pass",
    "audit_chain": "pass",
}
PASSING = {**AS_SEEDED, "rotation": "pass"}  # once FLY_API_TOKEN was rotated


def events(verb: str, since: int = 0) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb=verb, pk__gt=since).order_by("pk"))


def last_event_id() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def test_the_demo_as_seeded_fails_rotation_and_warns_on_an_optional_check(sweep, app):
    run = sweep()
    assert statuses(run) == AS_SEEDED
    assert run.result == ComplianceRun.Result.FAILED
    assert check(run, "rotation")["reason"] == (
        "FLY_API_TOKEN (GitHub Actions) is 120 days old, overdue"
    )
    assert check(run, "recent_ci")["reason"] == "main: codecov/patch: failure (not required)"
    assert run.changes == {"newly_failing": ["rotation"], "fixed": []}
    [swept] = events("compliance.swept")
    assert swept.app_name == app.name and swept.data["failing"] == ["rotation"]
    assert [e.data["check"] for e in events("compliance.check_failed")] == ["rotation"]
    [notification] = notifications()
    assert notification.event == "compliance.failing"
    assert notification.payload["compliance"]["check"] == "rotation"
    assert "FLY_API_TOKEN" in notification.payload["text"]
    [email] = Notification.objects.filter(channel=Notification.Channel.EMAIL)
    assert (email.recipient.username, email.event) == ("admin", "compliance.failing")
    assert email.payload["subject"].startswith(f"Compliance check failing: {app.name}: ")
    assert "FLY_API_TOKEN" in email.payload["body"]


@dataclass(frozen=True)
class Flip:
    key: str
    reason: str  # a part of the failing reason
    flip: Callable
    back: Callable


def _stuck_deploy(sandbox, app) -> None:
    production = app.environments.get(name="production")
    started = sandbox_now(sandbox) - timedelta(hours=3)
    deploy = Deploy.objects.create(
        environment=production,
        release=production.current_release,
        state=Deploy.State.RUNNING,
        requested_by_system="system",
        reason="stuck",
        started_at=started,
        created_at=started,
    )
    DeployStep.objects.create(deploy=deploy, position=1, kind="update_batch", title="batch 1")


def _stuck_deploy_done(sandbox, app) -> None:
    Deploy.objects.filter(reason="stuck").update(state=Deploy.State.FAILED)


def _stuck_approval(sandbox, app) -> None:
    staging = app.environments.get(name="staging")
    deploy = Deploy.objects.create(
        environment=staging,
        release=staging.current_release,
        state=Deploy.State.AWAITING_APPROVAL,
        requested_by_system="system",
        reason="waiting",
    )
    ApprovalRequest.objects.create(
        deploy=deploy, expires_at=sandbox_now(sandbox) - timedelta(hours=2)
    )


def _stuck_approval_closed(sandbox, app) -> None:
    Deploy.objects.filter(reason="waiting").update(state=Deploy.State.EXPIRED)


def _stuck_delivery(sandbox, app) -> None:
    WebhookDelivery.objects.create(
        delivery_id="stuck-1",
        event="release",
        payload={"repository": {"full_name": app.github_full_name}},
        received_at=sandbox_now(sandbox) - timedelta(hours=2),
    )


def _stuck_delivery_processed(sandbox, app) -> None:
    WebhookDelivery.objects.filter(delivery_id="stuck-1").update(
        state=WebhookDelivery.State.PROCESSED
    )


def _tamper(sandbox, app) -> None:
    with guard_lifted() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET verb = 'demo.tampered' WHERE id = 1")


def _untamper(sandbox, app) -> None:
    with guard_lifted() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET verb = 'demo.seeded' WHERE id = 1")


FLIPS = [
    Flip(
        "branch_protection",
        "main: force pushes are allowed",
        lambda s, a: s.change_protection(allow_force_pushes=True),
        lambda s, a: s.change_protection(allow_force_pushes=False),
    ),
    Flip(
        "branch_protection",
        "main: required checks missing: lint",
        lambda s, a: s.change_protection(remove_check="lint"),
        lambda s, a: s.change_protection(add_check="lint"),
    ),
    Flip(
        "recent_ci",
        "main: lint: failure",
        lambda s, a: s.set_check("main", "lint", "completed", "failure"),
        lambda s, a: s.set_check("main", "lint", "completed", "success"),
    ),
    Flip(
        "repository_security",
        "1 open secret-scanning alert(s); newest: Fly.io API Token on 2026-10-14",
        lambda s, a: s.add_secret_alert("fo1_leaked"),
        lambda s, a: s.resolve_secret_alert(1),
    ),
    Flip(
        "repository_security",
        "push protection is off",
        lambda s, a: s.set_security(secret_scanning_push_protection=False),
        lambda s, a: s.set_security(secret_scanning_push_protection=True),
    ),
    Flip(
        "secret_parity",
        "only in staging: STRIPE_KEY",
        lambda s, a: s.fly.put_secrets(demo.STAGING_FLY_APP, {"STRIPE_KEY": "sk_test_1"}),
        lambda s, a: s.fly.put_secrets(demo.STAGING_FLY_APP, {"STRIPE_KEY": None}),
    ),
    Flip(
        "rotation",
        "SECRET_KEY (Fly production) is 95 days old, overdue",
        lambda s, a: s.age_secret(demo.PRODUCTION_FLY_APP, "SECRET_KEY", 95),
        lambda s, a: s.age_secret(demo.PRODUCTION_FLY_APP, "SECRET_KEY", 1),
    ),
    Flip(
        "machine_drift",
        "guest.cpus is 1, declared 2",
        lambda s, a: s.change_machine(demo.PRODUCTION_FLY_APP, guest={"cpus": 1}),
        lambda s, a: s.change_machine(demo.PRODUCTION_FLY_APP, guest={"cpus": 2}),
    ),
    Flip(
        "machine_drift",
        "production: 1 machine(s) running, 2 declared",
        lambda s, a: s.change_machine(demo.PRODUCTION_FLY_APP, destroy=True),
        lambda s, a: fly_client().create_machine(
            demo.PRODUCTION_FLY_APP,
            machine_config(
                declared_config(a.environments.get(name="production")),
                image=demo.release(demo.LIVE_VERSIONS["production"]).image_ref,
            ),
        ),
    ),
    Flip(
        "orphans_and_stuck_work",
        "Fly app hot-dash-pr-99 looks like a preview but has no open PR",
        lambda s, a: fly_client().create_app("hot-dash-pr-99", demo.FLY_ORG),
        lambda s, a: fly_client().delete_app("hot-dash-pr-99"),
    ),
    Flip("orphans_and_stuck_work", "its plan allows", _stuck_deploy, _stuck_deploy_done),
    Flip(
        "orphans_and_stuck_work",
        "UTC and is still pending",
        _stuck_approval,
        _stuck_approval_closed,
    ),
    Flip(
        "orphans_and_stuck_work",
        "webhook delivery stuck-1 (release) received",
        _stuck_delivery,
        _stuck_delivery_processed,
    ),
    Flip("audit_chain", "audit chain broken at event #1", _tamper, _untamper),
]


@pytest.fixture
def passing(app, sandbox, sweep):
    """The demo with FLY_API_TOKEN rotated 10 days ago: nothing fails (the optional check
    warns), and the first run's rotation failure is out of the way."""
    sweep()
    sandbox.age_secret("github", "FLY_API_TOKEN", 10)
    run = sweep()
    assert statuses(run) == PASSING
    assert run.changes == {"newly_failing": [], "fixed": ["rotation"]}
    return app


@pytest.mark.parametrize("flip", FLIPS, ids=lambda flip: f"{flip.key}:{flip.reason[:30]}")
def test_a_flipped_check_fails_once_and_is_fixed_once(flip, passing, sandbox, sweep):
    mark = notifications()[-1].pk
    events_mark = last_event_id()
    flip.flip(sandbox, passing)

    failing = sweep()
    assert {k: s for k, s in statuses(failing).items() if s == "fail"} == {flip.key: "fail"}
    assert flip.reason in check(failing, flip.key)["reason"]
    assert failing.changes == {"newly_failing": [flip.key], "fixed": []}
    [notification] = notifications(since=mark)
    assert notification.event == "compliance.failing"
    assert notification.payload["compliance"] == {
        "run": failing.pk,
        "app": passing.name,
        "check": flip.key,
        "status": "FAIL",
    }
    [failed] = events("compliance.check_failed", since=events_mark)
    assert failed.data["check"] == flip.key and flip.reason in failed.data["reason"]
    assert len(events("compliance.swept", since=events_mark)) == 1

    still = sweep()
    assert statuses(still)[flip.key] == "fail" and still.changes["newly_failing"] == []
    assert len(notifications(since=mark)) == 1
    assert len(events("compliance.check_failed", since=events_mark)) == 1

    flip.back(sandbox, passing)
    fixed = sweep()
    assert statuses(fixed) == PASSING
    assert fixed.changes == {"newly_failing": [], "fixed": [flip.key]}
    assert [n.event for n in notifications(since=mark)] == [
        "compliance.failing",
        "compliance.fixed",
    ]
    [fixed_event] = events("compliance.check_fixed", since=events_mark)
    assert fixed_event.data["check"] == flip.key


def test_an_optional_check_failing_only_warns(passing, sandbox, sweep):
    sandbox.set_check("main", "bundle-size", "completed", "failure")
    run = sweep()
    assert statuses(run)["recent_ci"] == "warn"
    assert "bundle-size: failure (not required)" in check(run, "recent_ci")["details"]


def test_a_secret_due_within_14_days_warns(passing, sandbox, sweep):
    sandbox.age_secret(demo.STAGING_FLY_APP, "DATABASE_URL", 80)
    run = sweep()
    assert statuses(run)["rotation"] == "warn"
    assert "DATABASE_URL (Fly staging): 80 days old" in check(run, "rotation")["reason"]


def test_a_secrets_own_period_overrides_the_apps(passing, sandbox, sweep):
    passing.secret_rotations.create(location="fly:staging", name="DATABASE_URL", rotation_days=30)
    sandbox.age_secret(demo.STAGING_FLY_APP, "DATABASE_URL", 31)
    assert check(sweep(), "rotation")["reason"] == (
        "DATABASE_URL (Fly staging) is 31 days old, overdue"
    )


def test_a_preview_holding_a_name_staging_lacks_fails_parity(passing, sandbox, sweep):
    env = Environment.objects.create(
        app=passing,
        name="pr-7",
        kind=Environment.Kind.PREVIEW,
        fly_app_name="hot-dash-pr-7",
        approvals_required=0,
    )
    Preview.objects.create(app=passing, environment=env, pr_number=7, state="running")
    fly = fly_client()
    fly.create_app("hot-dash-pr-7", demo.FLY_ORG)
    fly.set_secrets("hot-dash-pr-7", {"DATABASE_URL": "x", "ADMIN_PASSWORD": "y"})
    sandbox.open_pull("feat: seven", "seven")  # PR numbers start at 18: 7 is not open
    run = sweep()
    assert (
        "pr-7 holds names staging has not: ADMIN_PASSWORD" in check(run, "secret_parity")["reason"]
    )


def test_an_unprotected_branch_fails(passing, sandbox, sweep):
    sandbox.change_protection(protected=False)
    assert check(sweep(), "branch_protection")["reason"] == "main is not protected"


def test_secret_scanning_off_fails(passing, sandbox, sweep):
    sandbox.set_security(secret_scanning=False)
    run = sweep()
    assert check(run, "repository_security")["reason"].startswith("secret scanning is off")


def test_an_unreachable_upstream_is_stored_as_not_run_and_judges_nothing(passing, sandbox, sweep):
    mark = notifications()[-1].pk
    sandbox.add_fault("status", service="fly", status=503)
    run = sweep()
    assert run.result == ComplianceRun.Result.ERROR
    assert run.error.startswith("Fly.io unreachable: fly GET /fly/v1/apps -> 503")
    assert run.checks == [] and run.changes == {}
    assert notifications(since=mark) == []
    assert events("compliance.swept")[-1].data["error"] == run.error
    sandbox.clear_faults()
    # The next run compares with the last run that ran: nothing changed, nothing is sent.
    assert sweep().changes == {"newly_failing": [], "fixed": []}


def test_apps_are_read_concurrently(passing, sandbox):
    """Every app's reads are under way before any app's finish: a barrier as wide as the number
    of apps holds each app's first Fly machines read, so one app after another never passes it."""
    apps = [passing, *make_apps(sandbox.add_demo_fly_app, 3)]
    for app in apps[1:]:
        configure_as_declared(app, sandbox)
    production = {app.environments.get(name="production").fly_app_name for app in apps}
    barrier = threading.Barrier(len(apps), timeout=60)
    serve = sandbox.app.serve

    def held(service, req):
        if service == "fly" and req.path.split("/")[2:4] in ([p, "machines"] for p in production):
            production.discard(req.path.split("/")[2])
            barrier.wait()
        return serve(service, req)

    sandbox.app.serve = held
    runs = compliance_sweep(apps=apps, now=sandbox_now(sandbox))
    assert not production and not barrier.broken
    assert [run.result for run in runs] == [ComplianceRun.Result.WARNED] * len(apps)
