"""The compliance sweep: what should be true about each app's repository, CI, secrets and
machines, checked against GitHub and Fly, stored as a ComplianceRun and audited.

``compliance_sweep`` reads every app's upstreams concurrently (one thread per app, up to
COMPLIANCE_SWEEP_CONCURRENCY; the threads make HTTP calls only), then judges and stores each
app's run in turn: one ``compliance.swept`` event per run, and for each check that turned FAIL
(``compliance.check_failed``) or stopped failing (``compliance.check_fixed``) one event and one
notification to the app's webhook. A check that stays FAIL sends nothing more. Secret values are
never requested: names, dates and digests only, and secret-scanning alerts with the secret hidden.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from approvals import policy
from approvals.audit import record, verify
from deployments import compliance as rules
from deployments import task_names
from deployments.models import App, ComplianceRun, Environment, Preview, SecretRotation
from deployments.selectors.compliance import (
    compliance_previous_statuses,
    secret_rotations_of,
    stuck_work,
)
from deployments.selectors.drift import machines_drift
from deployments.services.notifications import notification_app_send
from deployments.services.previews import preview_app_pattern
from hotdash import queue
from hotdash.errors import Refused
from hotdash.integrations import fly, github
from hotdash.integrations.http import APIError, PermanentAPIError

log = logging.getLogger(__name__)

# --- reading the upstreams (worker threads: HTTP only, no database) ---------------------------


@dataclass(frozen=True)
class _Target:
    """What to read for one app, taken from the database before the threads start."""

    app: App
    environments: tuple[Environment, ...]  # production and staging: drift, parity, rotation
    previews: tuple[Environment, ...]  # live previews: parity only
    protected_fly_apps: frozenset[str]  # every environment's Fly app (never an orphan)


@dataclass
class _Upstream:
    repository: github.Repository | None = None
    protection: github.BranchProtection | None = None
    check_runs: list[github.CheckRun] = field(default_factory=list)
    alerts: list[github.SecretScanningAlert] | None = None
    actions_secrets: list[github.ActionsSecret] = field(default_factory=list)
    open_pulls: frozenset[int] = frozenset()
    fly_apps: tuple[str, ...] = ()
    machines: dict[str, list[fly.Machine]] = field(default_factory=dict)
    secrets: dict[str, list[fly.Secret]] = field(default_factory=dict)
    error: str = ""  # the sweep could not run: which upstream, what it answered
    started_at: datetime = field(default_factory=timezone.now)
    seconds: float = 0.0


def _absent_is_empty(read: Any) -> list[Any]:
    """A Fly app that does not exist has no machines and no secrets."""
    try:
        return read()
    except PermanentAPIError as error:
        if error.status == 404:
            return []
        raise


def _read_github(target: _Target, upstream: _Upstream) -> None:
    app = target.app
    with github.github_client(app.github_owner, app.github_repo) as client:
        upstream.repository = client.get_repository()
        branch = upstream.repository.default_branch
        upstream.protection = client.branch_protection(branch)
        upstream.check_runs = client.check_runs(branch)
        try:
            upstream.alerts = client.secret_scanning_alerts(state="open")
        except PermanentAPIError as error:
            if error.status != 404:  # scanning off (reported from the repository's settings)
                raise
        upstream.actions_secrets = client.actions_secrets()
        upstream.open_pulls = frozenset(pull.number for pull in client.list_pulls(state="open"))


def _read_fly(target: _Target, upstream: _Upstream) -> None:
    with fly.fly_client() as client:
        upstream.fly_apps = tuple(item.name for item in client.list_apps(target.app.fly_org))
        for env in target.environments:
            upstream.machines[env.name] = _absent_is_empty(
                lambda env=env: client.list_machines(env.fly_app_name)
            )
        for env in (*target.environments, *target.previews):
            upstream.secrets[env.name] = _absent_is_empty(
                lambda env=env: client.list_secrets(env.fly_app_name)
            )


def _read(target: _Target) -> _Upstream:
    upstream = _Upstream()
    clock = time.monotonic()
    for title, read in (("GitHub", _read_github), ("Fly.io", _read_fly)):
        try:
            read(target, upstream)
        except APIError as error:
            upstream.error = f"{title} unreachable: {error}"
            log.warning("compliance sweep of %s could not run: %s", target.app.name, error)
            break
    upstream.seconds = time.monotonic() - clock
    return upstream


# --- judging (main thread) -------------------------------------------------------------------


def _target(app: App) -> _Target:
    environments = list(app.environments.all())
    live_previews = set(
        Preview.objects.filter(app=app, environment__isnull=False)
        .exclude(state=Preview.State.DESTROYED)
        .values_list("environment_id", flat=True)
    )
    return _Target(
        app=app,
        environments=tuple(e for e in environments if e.kind != Environment.Kind.PREVIEW),
        previews=tuple(e for e in environments if e.pk in live_previews),
        protected_fly_apps=frozenset(e.fly_app_name for e in environments),
    )


def _secret_entries(target: _Target, upstream: _Upstream) -> list[rules.SecretEntry]:
    entries = [
        rules.SecretEntry(rules.GITHUB_ACTIONS, secret.name, secret.updated_at)
        for secret in upstream.actions_secrets
    ]
    for env in target.environments:
        entries += [
            rules.SecretEntry(rules.fly_location(env.name), s.name, s.created_at, s.digest)
            for s in upstream.secrets.get(env.name, ())
        ]
    return entries


def _findings(
    target: _Target, upstream: _Upstream, *, audit: Any, now: datetime
) -> list[rules.Finding]:
    app = target.app
    assert upstream.repository is not None
    branch = upstream.repository.default_branch
    required = list(app.required_checks)
    entries = _secret_entries(target, upstream)
    records = secret_rotations_of(app=app)
    rotations = []
    for entry in entries:
        record_ = records.get((entry.location, entry.name))
        rotations.append(
            (
                entry,
                rules.rotation_of(
                    updated_at=entry.updated_at,
                    rotated_at=record_.rotated_at if record_ else None,
                    period_days=record_.rotation_days if record_ else None,
                    default_days=app.secret_rotation_days,
                    now=now,
                ),
            )
        )
    kinds = {env.kind: env.name for env in target.environments}
    pattern = preview_app_pattern(app)
    orphans = [
        name
        for name in upstream.fly_apps
        if (match := pattern.match(name))
        and name not in target.protected_fly_apps
        and int(match.group(1)) not in upstream.open_pulls
    ]
    names = {env: {s.name for s in secrets} for env, secrets in upstream.secrets.items()}
    return [
        rules.branch_protection_finding(
            upstream.protection,
            branch=branch,
            required_checks=required,
            min_reviews=app.compliance_min_approving_reviews,
        ),
        rules.recent_ci_finding(upstream.check_runs, branch=branch, required_checks=required),
        rules.repository_security_finding(upstream.repository, upstream.alerts),
        rules.secrets_inventory_finding(entries),
        rules.secret_parity_finding(
            names,
            production=kinds.get(Environment.Kind.PRODUCTION, ""),
            staging=kinds.get(Environment.Kind.STAGING, ""),
            previews=[env.name for env in target.previews],
        ),
        rules.rotation_finding(rotations),
        rules.machine_drift_finding(
            [
                (env, machines_drift(environment=env, machines=upstream.machines.get(env.name, [])))
                for env in target.environments
            ]
        ),
        rules.orphans_and_stuck_finding(orphans, stuck_work(app=app, now=now)),
        rules.audit_chain_finding(audit),
    ]


def _store(
    target: _Target,
    upstream: _Upstream,
    findings: list[rules.Finding],
    *,
    trigger: str,
    requested_by: Any,
) -> ComplianceRun:
    """One transaction: the run, its audit event, and an event and a notification for each
    check that turned FAIL or stopped failing."""
    app = target.app
    finished_at = timezone.now()
    with transaction.atomic():
        App.objects.select_for_update().filter(pk=app.pk).first()  # one store per app at a time
        current = {finding.key: finding.status for finding in findings}
        changes = (
            rules.changes_between(compliance_previous_statuses(app=app), current)
            if findings
            else {}
        )
        result = (
            ComplianceRun.Result.ERROR
            if upstream.error
            else {
                rules.PASS: ComplianceRun.Result.PASSED,
                rules.WARN: ComplianceRun.Result.WARNED,
                rules.FAIL: ComplianceRun.Result.FAILED,
            }[rules.overall(findings)]
        )
        run = ComplianceRun.objects.create(
            app=app,
            started_at=upstream.started_at,
            finished_at=finished_at,
            result=result,
            trigger=trigger,
            requested_by=requested_by,
            checks=[finding.as_dict() for finding in findings],
            changes=changes,
            error=upstream.error,
        )
        by_key = {finding.key: finding for finding in findings}
        record(
            actor=requested_by or "system",
            verb="compliance.swept",
            target=run,
            app=app.name,
            data={
                "result": result,
                "trigger": trigger,
                "duration_seconds": round(run.duration_seconds, 3),
                "failing": [k for k, s in current.items() if s == rules.FAIL],
                "warning": [k for k, s in current.items() if s == rules.WARN],
                **changes,
                **({"error": upstream.error} if upstream.error else {}),
            },
        )
        for key in changes.get("newly_failing", ()):
            _announce(run, by_key[key], verb="compliance.check_failed", event="compliance.failing")
        for key in changes.get("fixed", ()):
            _announce(run, by_key[key], verb="compliance.check_fixed", event="compliance.fixed")
    return run


def _announce(run: ComplianceRun, finding: rules.Finding, *, verb: str, event: str) -> None:
    app = run.app
    record(
        actor="system",
        verb=verb,
        target=run,
        app=app.name,
        data={"check": finding.key, "status": finding.label, "reason": finding.reason},
    )
    what = "failing" if event == "compliance.failing" else "fixed"
    notification_app_send(
        app=app,
        event=event,
        key=f"compliance:{run.pk}:{finding.key}:{event}",
        headline=f"Compliance check {what}: {app.name}: {finding.title}",
        lines=[f"{finding.label}: {finding.reason}"],
        subject={
            "compliance": {
                "run": run.pk,
                "app": app.name,
                "check": finding.key,
                "status": finding.label,
            }
        },
    )


def compliance_sweep(
    *,
    apps: Sequence[App],
    trigger: str = ComplianceRun.Trigger.SCHEDULE,
    requested_by: Any = None,
    now: datetime | None = None,
) -> list[ComplianceRun]:
    """Sweep ``apps``: read their upstreams concurrently, then judge and store each one's run
    (rules evaluated as of ``now``, default the current time). Returns the runs, in order."""
    targets = [_target(app) for app in apps]
    if not targets:
        return []
    audit = verify()  # one chain, the same verdict for every app
    workers = max(1, min(len(targets), settings.COMPLIANCE_SWEEP_CONCURRENCY))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="compliance") as pool:
        upstreams = list(pool.map(_read, targets))
    runs = []
    for target, upstream in zip(targets, upstreams, strict=True):
        findings = (
            []
            if upstream.error
            else _findings(target, upstream, audit=audit, now=now or timezone.now())
        )
        runs.append(_store(target, upstream, findings, trigger=trigger, requested_by=requested_by))
    return runs


def compliance_sweep_job(
    *, app_id: int | None = None, requested_by_id: int | None = None
) -> list[ComplianceRun]:
    """The worker's job: every app (the daily beat entry), or one app for a person's
    "Run now" (``app_id``, ``requested_by_id``)."""
    if app_id is None:
        return compliance_sweep(apps=list(App.objects.order_by("name")))
    requester = get_user_model().objects.filter(pk=requested_by_id).first()
    return compliance_sweep(
        apps=list(App.objects.filter(pk=app_id)),
        trigger=ComplianceRun.Trigger.BUTTON,
        requested_by=requester,
    )


def compliance_sweep_request(*, actor: Any, app: App, ip: str | None = None) -> None:
    """A deployer's "Run now" on /ops/compliance/: audited, then the sweep is queued."""
    if not policy.can_request_deploy(actor):
        raise PermissionDenied("Only deployers and above may run the compliance sweep.")
    with transaction.atomic():
        record(actor=actor, verb="compliance.requested", target=app, app=app.name, ip=ip)
        transaction.on_commit(
            lambda: queue.send(task_names.COMPLIANCE_SWEEP, app_id=app.pk, requested_by_id=actor.pk)
        )


def secret_rotation_record(
    *,
    actor: Any,
    app: App,
    location: str,
    name: str,
    comment: str,
    rotated_at: datetime | None = None,
    known: Sequence[tuple[str, str]],
    ip: str | None = None,
) -> SecretRotation:
    """Record that a secret was rotated outside HotDash (``known``: the (location, name) pairs
    the latest sweep found). Its rotation period restarts from ``rotated_at`` (default now)."""
    if not policy.can_request_deploy(actor):
        raise PermissionDenied("Only deployers and above may record a rotation.")
    if not comment.strip():
        raise Refused("comment_required", "Say how the secret was rotated.")
    if (location, name) not in known:
        raise Refused("unknown_secret", f"{name} is not a known secret of {app.name}.")
    rotated_at = rotated_at or timezone.now()
    with transaction.atomic():
        rotation, _ = SecretRotation.objects.select_for_update().get_or_create(
            app=app, location=location, name=name
        )
        rotation.rotated_at = rotated_at
        rotation.rotated_by = actor
        rotation.comment = comment
        rotation.save(update_fields=["rotated_at", "rotated_by", "comment"])
        record(
            actor=actor,
            verb="secret.rotation_recorded",
            target=rotation,
            app=app.name,
            data={
                "secret": name,
                "location": rules.location_label(location),
                "rotated_at": rotated_at.isoformat(),
                "comment": comment,
            },
            ip=ip,
        )
    return rotation
