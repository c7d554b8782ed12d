"""Requesting a deploy: the gates it must pass, the plan the worker will run, and the hand-off
to approvals (gated environments) or straight to the queue.

A refused request raises :class:`DeployRefused`, creates no deploy and leaves one
``deploy.refused`` audit event saying why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import policy
from approvals.audit import SYSTEM_ACTORS, record
from approvals.services import approval_request_cancel, approval_request_open
from deployments import rollout
from deployments.models import Build, Deploy, DeployStep, Environment, FreezeWindow, Release
from deployments.selectors.environments import environment_machines
from deployments.services.deploys import deploy_cancel, deploy_queue
from hotdash.integrations import APIError, github_client

OK_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})


# How a refusal is answered over HTTP (form and API alike); other codes are 422.
REFUSAL_STATUS = {
    "forbidden": 403,
    "environment_locked": 409,
    "freeze_window": 409,
    "checks_failing": 409,
    "upstream_error": 502,
}


class DeployRefused(Exception):
    """A request that must not go ahead; ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def status(self) -> int:
        return REFUSAL_STATUS.get(self.code, 422)


@dataclass(frozen=True)
class CheckResult:
    name: str
    state: str  # success / failure / pending / missing / a check-run conclusion
    ok: bool
    url: str = ""


@dataclass(frozen=True)
class ChecksVerdict:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failing(self) -> list[CheckResult]:
        return [result for result in self.results if not result.ok]

    @property
    def green(self) -> bool:
        return not self.failing


def ci_checks_evaluate(*, app: Any, commit_sha: str) -> ChecksVerdict:
    """The CI verdict for a commit: every commit status and check run green, and
    every ``app.required_checks`` name present among them. Raises APIError when GitHub fails."""
    with github_client(app.github_owner, app.github_repo) as github:
        combined = github.combined_status(commit_sha)
        runs = github.check_runs(commit_sha)
    results = [
        CheckResult(name=s.context, state=s.state, ok=s.state == "success", url=s.target_url)
        for s in combined.statuses
    ]
    # The combined state also covers statuses older than the latest per context.
    if (
        combined.total_count
        and combined.state in ("failure", "pending")
        and all(r.ok for r in results)
    ):
        results.append(CheckResult(name="combined status", state=combined.state, ok=False))
    results += [
        CheckResult(
            name=run.name,
            state=run.conclusion or run.status,
            ok=run.status == "completed" and run.conclusion in OK_CONCLUSIONS,
            url=run.html_url,
        )
        for run in runs
    ]
    present = {result.name for result in results}
    results += [
        CheckResult(name=name, state="missing", ok=False)
        for name in app.required_checks
        if name not in present
    ]
    return ChecksVerdict(results=results)


def fly_machine_ids(*, environment: Environment) -> list[str]:
    """The ids of the machines the environment's Fly app runs now ([] when the app is new)."""
    machines = environment_machines(environment=environment)
    return [machine.id for machine in machines if machine.state != "destroyed"]


def active_freeze_window(*, environment: Environment, at: Any = None) -> FreezeWindow | None:
    at = at or timezone.now()
    return environment.freeze_windows.filter(starts_at__lte=at, ends_at__gt=at).first()


# --- the plan --------------------------------------------------------------------------------


def deploy_plan_create(
    *,
    deploy: Deploy,
    target_name: str,
    machine_ids: list[str],
    verify_data: dict[str, Any],
    create_missing: bool = True,
) -> list[DeployStep]:
    """Save the ordered steps a worker will run for ``deploy`` over ``machine_ids``; with
    ``create_missing``, batches that create the machines the environment lacks."""
    environment, commit_sha = deploy.environment, deploy.commit_sha
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (
            DeployStep.Kind.VERIFY_ARTIFACT,
            "Verify artifact checksum and image digest",
            verify_data,
        ),
        (
            DeployStep.Kind.GITHUB_DEPLOYMENT,
            f"Create GitHub deployment '{environment.name}' at {commit_sha[:7] or 'the image'}",
            {"environment": environment.name, "ref": commit_sha},
        ),
    ]
    percent = environment.max_unavailable_percent
    existing = rollout.plan_batches(machine_ids, percent) if machine_ids else []
    batches: list[dict[str, Any]] = [{"machines": ids} for ids in existing]
    missing = max(0, environment.machine_count - len(machine_ids)) if create_missing else 0
    if missing:
        size = rollout.batch_size(missing, percent)
        batches += [{"create": min(size, missing - i)} for i in range(0, missing, size)]
    for number, batch in enumerate(batches, start=1):
        batch["batch"] = number
        if "machines" in batch:
            what = f"update {', '.join(batch['machines'])}"
        else:
            what = f"create {batch['create']} machine(s)"
        title = f"Batch {number}/{len(batches)}: {what} to {target_name}"
        steps.append((DeployStep.Kind.UPDATE_BATCH, title, batch))
    env = environment
    steps += [
        (
            DeployStep.Kind.VERIFY,
            f"Watch health for {env.verification_window_seconds} s "
            f"(HTTP {env.health_http_path} every {env.health_http_interval_seconds} s, "
            f"timeout {env.health_http_timeout_seconds} s, "
            f"grace {env.health_http_grace_seconds} s; "
            f"TCP every {env.health_tcp_interval_seconds} s, "
            f"timeout {env.health_tcp_timeout_seconds} s, grace {env.health_tcp_grace_seconds} s)",
            {
                "window_seconds": env.verification_window_seconds,
                "http_path": env.health_http_path,
                "attempts": env.health_attempts,
            },
        ),
        (DeployStep.Kind.GITHUB_STATUS, "Report the result to GitHub", {}),
    ]
    return DeployStep.objects.bulk_create(
        DeployStep(deploy=deploy, position=position, kind=kind, title=title, data=data)
        for position, (kind, title, data) in enumerate(steps, start=1)
    )


# --- the request -----------------------------------------------------------------------------


def _refuse(
    *, refusal: DeployRefused, actor: Any, environment: Environment, ip: str | None, data: dict
) -> None:
    with transaction.atomic():
        record(
            actor=actor,
            verb="deploy.refused",
            target=environment,
            scope=environment,
            data={**data, "code": refusal.code, "message": refusal.message, **refusal.details},
            ip=ip,
        )
    raise refusal


def deploy_gate_refusal(
    *, environment: Environment, applied: set[str], kind: str, now: Any
) -> DeployRefused | None:
    """Lock and freeze-window gates (cheap, re-run under the environment's row lock)."""
    if kind == Deploy.Kind.AUTO_ROLLBACK:
        return None
    if environment.is_locked and "lock" not in applied:
        who = environment.locked_by.get_username() if environment.locked_by else "system"
        return DeployRefused(
            "environment_locked",
            f"{environment} is locked by {who} since "
            f"{environment.locked_at:%Y-%m-%d %H:%M} UTC: {environment.lock_reason}",
            {
                "locked_by": who,
                "lock_reason": environment.lock_reason,
                "locked_at": environment.locked_at.isoformat(),
            },
        )
    window = active_freeze_window(environment=environment, at=now)
    if window is not None and "freeze_window" not in applied:
        return DeployRefused(
            "freeze_window",
            f"{environment} is in a freeze window until {window.ends_at:%Y-%m-%d %H:%M} UTC: "
            f"{window.reason}",
            {
                "window_reason": window.reason,
                "starts_at": window.starts_at.isoformat(),
                "ends_at": window.ends_at.isoformat(),
            },
        )
    return None


def _static_refusal(
    *,
    environment: Environment,
    release: Release | None,
    requested_by: Any,
    reason: str,
    overrides: set[str],
    override_reason: str,
) -> DeployRefused | None:
    if requested_by is not None and not policy.can_request_deploy(requested_by):
        return DeployRefused("forbidden", "Your role does not allow requesting deploys.")
    if not reason.strip():
        return DeployRefused("reason_required", "Say why you are deploying: a reason is required.")
    if overrides:
        unknown = overrides - policy.OVERRIDABLE
        if unknown:
            return DeployRefused(
                "invalid_override",
                f"Unknown override(s): {', '.join(sorted(unknown))}; use lock, freeze_window "
                "or checks.",
            )
        if requested_by is None or not policy.can_override(requested_by):
            return DeployRefused("invalid_override", "Only admins may override a gate.")
        if not override_reason.strip():
            return DeployRefused(
                "invalid_override", "An override needs its own reason, recorded in the audit log."
            )
    if release is not None:
        if release.deleted_on_github_at is not None:
            return DeployRefused(
                "release_deleted", f"{release.tag} was deleted on GitHub; it cannot be deployed."
            )
        if release.is_bad:
            return DeployRefused(
                "release_bad",
                f"{release.tag} is marked bad: {release.bad_reason or 'no reason given'}.",
            )
        if release.validation != Release.Validation.VALID:
            failed = [r.get("message", "") for r in release.validation_results if not r.get("ok")]
            return DeployRefused(
                "release_invalid",
                f"{release.tag} is not a valid release ({release.get_validation_display()})"
                + (f": {'; '.join(failed)}" if failed else "."),
                {"validation": release.validation, "problems": failed},
            )
    return None


def deploy_request(
    *,
    environment: Environment,
    release: Release | None = None,
    build: Build | None = None,
    kind: str = Deploy.Kind.DEPLOY,
    requested_by: Any = None,
    system_actor: str = "",
    reason: str,
    override_reason: str = "",
    overrides: Iterable[str] = (),
    fast_path: bool = False,
    ip: str | None = None,
) -> Deploy:
    """Request a deploy of ``release`` (or a preview ``build``) to ``environment``.

    Checks role, reason, release, lock, freeze windows and CI checks (admins may override the
    last three with ``overrides`` and ``override_reason``), asks Fly for the machines to plan
    the batches, then creates the deploy with its plan and either opens an approval request
    or queues it. Raises :class:`DeployRefused` (nothing created, one audit event) otherwise.
    """
    if (release is None) == (build is None):
        raise ValueError("deploy_request needs exactly one of release and build")
    if requested_by is None and system_actor not in SYSTEM_ACTORS:
        raise ValueError("deploy_request needs requested_by or a system_actor")
    target = release or build
    if target.app_id != environment.app_id:
        raise ValueError(f"{target} does not belong to {environment.app}")
    actor = requested_by or system_actor
    wanted = set(overrides)
    context = {
        "kind": kind,
        "target": release.tag if release else build.commit_sha,
        "reason": reason,
        "overrides": sorted(wanted),
    }

    def refuse(refusal: DeployRefused) -> None:
        _refuse(refusal=refusal, actor=actor, environment=environment, ip=ip, data=context)

    refusal = _static_refusal(
        environment=environment,
        release=release,
        requested_by=requested_by,
        reason=reason,
        overrides=wanted,
        override_reason=override_reason,
    )
    if refusal is None:
        refusal = deploy_gate_refusal(
            environment=environment, applied=wanted, kind=kind, now=timezone.now()
        )
    if refusal is not None:
        refuse(refusal)

    commit_sha = release.commit_sha if release else build.commit_sha
    checks = ChecksVerdict()
    try:
        if release is not None and kind != Deploy.Kind.AUTO_ROLLBACK:
            checks = ci_checks_evaluate(app=environment.app, commit_sha=commit_sha)
        machine_ids = fly_machine_ids(environment=environment)
    except APIError as error:
        refuse(
            DeployRefused(
                "upstream_error",
                f"Could not ask {error.provider} while planning; nothing was created. "
                f"Try again. ({error.status or 'no response'})",
            )
        )
    if not checks.green and "checks" not in wanted:
        failing = [f"{r.name} ({r.state})" for r in checks.failing]
        refuse(
            DeployRefused(
                "checks_failing",
                f"Required CI checks on {commit_sha[:7]} are not green: {', '.join(failing)}.",
                {"failing": [{"name": r.name, "state": r.state} for r in checks.failing]},
            )
        )

    with transaction.atomic():
        environment = (
            Environment.objects.select_for_update().select_related("app").get(pk=environment.pk)
        )
        refusal = deploy_gate_refusal(
            environment=environment, applied=wanted, kind=kind, now=timezone.now()
        )
        if refusal is None:
            applied = {
                name
                for name, needed in (
                    ("lock", environment.is_locked),
                    ("freeze_window", active_freeze_window(environment=environment) is not None),
                    ("checks", not checks.green),
                )
                if needed and name in wanted
            }
            deploy = _create(
                environment=environment,
                release=release,
                build=build,
                kind=kind,
                requested_by=requested_by,
                system_actor=system_actor,
                reason=reason,
                applied=applied,
                override_reason=override_reason,
                fast_path=fast_path,
                checks=checks,
                machine_ids=machine_ids,
                ip=ip,
            )
    if refusal is not None:
        refuse(refusal)
    return deploy


def _create(
    *,
    environment: Environment,
    release: Release | None,
    build: Build | None,
    kind: str,
    requested_by: Any,
    system_actor: str,
    reason: str,
    applied: set[str],
    override_reason: str,
    fast_path: bool,
    checks: ChecksVerdict,
    machine_ids: list[str],
    ip: str | None,
) -> Deploy:
    source = release or build
    actor = requested_by or system_actor
    deploy = Deploy.objects.create(
        environment=environment,
        release=release,
        build=build,
        kind=kind,
        state=Deploy.State.REQUESTED,
        requested_by=requested_by,
        requested_by_system="" if requested_by else system_actor,
        reason=reason.strip(),
        previous_release=environment.current_release,
        previous_image_ref=environment.current_image_ref,
        image_ref=source.image_ref,
        image_digest=source.image_digest,
        artifact_sha256=release.artifact_sha256 if release else "",
        commit_sha=source.commit_sha,
        overrides=sorted(applied),
        override_reason=override_reason.strip() if applied else "",
        overridden_by=requested_by if applied else None,
        fast_path=fast_path,
    )
    target_name = release.tag if release else f"{build.commit_sha[:7]}"
    verify_data = {
        "image_ref": deploy.image_ref,
        "image_digest": deploy.image_digest,
        "artifact_sha256": deploy.artifact_sha256,
        "checks": [
            {"name": r.name, "state": r.state, "ok": r.ok, "url": r.url} for r in checks.results
        ],
    }
    steps = deploy_plan_create(
        deploy=deploy, target_name=target_name, machine_ids=machine_ids, verify_data=verify_data
    )
    about = {"target": deploy, "scope": environment}
    record(
        actor=actor,
        verb="deploy.requested",
        data={
            "kind": kind,
            "release": release.tag if release else "",
            "image_ref": deploy.image_ref,
            "image_digest": deploy.image_digest,
            "artifact_sha256": deploy.artifact_sha256,
            "reason": deploy.reason,
            "steps": len(steps),
            "fast_path": fast_path,
        },
        ip=ip,
        **about,
    )
    if applied:
        record(
            actor=actor,
            verb="deploy.override",
            data={
                "overrides": sorted(applied),
                "reason": deploy.override_reason,
                "failing_checks": [r.name for r in checks.failing],
            },
            ip=ip,
            **about,
        )
    if policy.approvals_needed(environment, fast_path=fast_path):
        approval_request_open(deploy=deploy, actor=actor, ip=ip)
    else:
        deploy_queue(deploy=deploy, actor=actor)
    return deploy


def deploy_request_cancel(
    *, deploy: Deploy, actor: Any, reason: str, ip: str | None = None
) -> Deploy:
    """Withdraw a deploy that has not started; its pending approval request closes with it.

    Raises deployments.services.deploys.DeployStateError when the deploy already started.
    """
    with transaction.atomic():
        approval_request_cancel(deploy=deploy, actor=actor, ip=ip)
        return deploy_cancel(deploy=deploy, actor=actor, reason=reason, ip=ip)
