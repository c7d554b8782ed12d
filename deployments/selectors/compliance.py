"""Reads for the compliance sweep and its pages: stuck work, runs and their history, and the
secrets an app's latest sweep found (names, places, dates; never a value)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Prefetch

from deployments.compliance import (
    CHECKS,
    FAIL,
    LABELS,
    Finding,
    Rotation,
    deploy_allowed_seconds,
    location_label,
    report_markdown,
    report_text,
    rotation_of,
)
from deployments.models import (
    App,
    ComplianceRun,
    Deploy,
    DeployStep,
    SecretRotation,
    WebhookDelivery,
)


def stuck_work(*, app: App, now: datetime) -> list[str]:
    """What should have finished and did not: deploys running past what their plan allows,
    approval requests still pending past their expiry plus COMPLIANCE_STUCK_AFTER_SECONDS
    (the approval sweep closes them within a minute), and webhook deliveries for the app's
    repository left unprocessed that long."""
    late = now - timedelta(seconds=settings.COMPLIANCE_STUCK_AFTER_SECONDS)
    problems = []
    running = (
        Deploy.objects.filter(environment__app=app, state__in=Deploy.ACTIVE_STATES)
        .select_related("environment")
        .prefetch_related(Prefetch("steps", queryset=DeployStep.objects.only("deploy", "kind")))
        .order_by("id")
    )
    for deploy in running:
        allowed = deploy_allowed_seconds(deploy.environment, [s.kind for s in deploy.steps.all()])
        started = deploy.started_at or deploy.queued_at or deploy.created_at
        if started + timedelta(seconds=allowed) < now:
            minutes = int((now - started).total_seconds() // 60)
            problems.append(
                f"deploy #{deploy.pk} to {deploy.environment.name} has run {minutes} min; "
                f"its plan allows {allowed // 60} min"
            )
    waiting = (
        Deploy.objects.filter(
            environment__app=app,
            state=Deploy.State.AWAITING_APPROVAL,
            approval_request__expires_at__lt=late,
        )
        .select_related("approval_request")
        .order_by("id")
    )
    problems += [
        f"approval request for deploy #{deploy.pk} expired "
        f"{deploy.approval_request.expires_at:%Y-%m-%d %H:%M} UTC and is still pending"
        for deploy in waiting
    ]
    unprocessed = WebhookDelivery.objects.filter(
        state=WebhookDelivery.State.RECEIVED,
        received_at__lt=late,
        payload__repository__full_name=app.github_full_name,
    ).order_by("received_at")
    problems += [
        f"webhook delivery {delivery.delivery_id} ({delivery.event}) received "
        f"{delivery.received_at:%Y-%m-%d %H:%M} UTC, not processed"
        for delivery in unprocessed
    ]
    return problems


def compliance_previous_statuses(*, app: App) -> dict[str, str]:
    """Each check's verdict in the app's latest run that ran ({} before the first)."""
    run = app.compliance_runs.exclude(result=ComplianceRun.Result.ERROR).first()
    return {check["key"]: check["status"] for check in run.checks} if run else {}


def secret_rotations_of(*, app: App) -> dict[tuple[str, str], SecretRotation]:
    return {(r.location, r.name): r for r in SecretRotation.objects.filter(app=app)}


# --- pages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    run: ComplianceRun
    findings: list[Finding]
    newly_failing: list[str]  # check titles
    fixed: list[str]

    @property
    def failing(self) -> int:
        return sum(1 for finding in self.findings if finding.status == FAIL)


def _view(run: ComplianceRun) -> RunView:
    changes = run.changes or {}
    return RunView(
        run=run,
        findings=[Finding.of(check) for check in run.checks],
        newly_failing=[CHECKS[key] for key in changes.get("newly_failing", ())],
        fixed=[CHECKS[key] for key in changes.get("fixed", ())],
    )


@dataclass(frozen=True)
class AppCompliance:
    app: App
    latest: RunView | None


def compliance_overview() -> list[AppCompliance]:
    """Every app with its latest run."""
    apps = list(App.objects.order_by("name"))
    latest: dict[int, ComplianceRun] = {}
    for app in apps:
        run = app.compliance_runs.select_related("requested_by").first()
        if run is not None:
            latest[app.pk] = run
    return [
        AppCompliance(app=app, latest=_view(latest[app.pk]) if app.pk in latest else None)
        for app in apps
    ]


def compliance_history(*, limit: int = 30) -> list[RunView]:
    """The newest runs of every app, each with what changed since that app's previous run."""
    runs = ComplianceRun.objects.select_related("app", "requested_by")[:limit]
    return [_view(run) for run in runs]


def compliance_run_get(*, pk: int) -> RunView:
    return _view(ComplianceRun.objects.select_related("app", "requested_by").get(pk=pk))


def compliance_run_report(run: ComplianceRun, *, markdown: bool = True) -> str:
    """The run as the gap report (Markdown) or as plain text lines."""
    render = report_markdown if markdown else report_text
    return render(
        app=run.app.name,
        at=run.started_at,
        result=run.get_result_display(),
        findings=[Finding.of(check) for check in run.checks],
        error=run.error,
    )


def compliance_run_json(run: ComplianceRun) -> dict:
    return {
        "id": run.pk,
        "app": run.app.name,
        "started_at": run.started_at.isoformat(),
        "duration_seconds": round(run.duration_seconds, 3),
        "result": run.get_result_display(),
        "trigger": run.trigger,
        "error": run.error,
        "changes": run.changes,
        "checks": [
            {**check, "title": CHECKS[check["key"]], "status": LABELS[check["status"]]}
            for check in run.checks
        ],
    }


@dataclass(frozen=True)
class SecretRow:
    location: str
    location_label: str
    name: str
    updated_at: datetime | None  # what upstream last reported
    record: SecretRotation | None
    rotation: Rotation


@dataclass(frozen=True)
class AppSecrets:
    app: App
    swept_at: datetime | None  # the run the names and dates come from
    rows: list[SecretRow]


def app_secrets(*, app: App, now: datetime) -> AppSecrets:
    """The secrets the app's latest sweep found, with each one's rotation due date (from its
    upstream date and any rotation recorded since)."""
    run = (
        app.compliance_runs.exclude(result=ComplianceRun.Result.ERROR)
        .only("started_at", "checks")
        .first()
    )
    inventory = next(
        (c for c in (run.checks if run else ()) if c["key"] == "secrets_inventory"), None
    )
    records = secret_rotations_of(app=app)
    rows = []
    for secret in (inventory or {}).get("data", {}).get("secrets", ()):
        updated = datetime.fromisoformat(secret["updated_at"]) if secret["updated_at"] else None
        record = records.get((secret["location"], secret["name"]))
        rotation = rotation_of(
            updated_at=updated,
            rotated_at=record.rotated_at if record else None,
            period_days=record.rotation_days if record else None,
            default_days=app.secret_rotation_days,
            now=now,
        )
        rows.append(
            SecretRow(
                location=secret["location"],
                location_label=location_label(secret["location"]),
                name=secret["name"],
                updated_at=updated,
                record=record,
                rotation=rotation,
            )
        )
    return AppSecrets(app=app, swept_at=run.started_at if run else None, rows=rows)
