"""Requesting a deploy: the gates it must pass, the plan the worker will run, and the hand-off
to approvals (gated environments) or straight to the queue.

A refused request raises :class:`~hotdash.errors.Refused`, creates no deploy and leaves one
``deploy.refused`` audit event saying why.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import policy
from approvals.audit import SYSTEM_ACTORS, record
from approvals.services import approval_request_cancel, approval_request_open
from deployments.models import Build, Deploy, Environment, Release
from deployments.selectors.promotion import Promotion, promotion_check
from deployments.selectors.queue import deploy_outlook
from deployments.services.checks import ChecksVerdict, ci_checks_evaluate
from deployments.services.deploys import deploy_cancel, deploy_queue
from deployments.services.environments import environment_machines
from deployments.services.gates import deploy_gate_refusal, freeze_window_active
from deployments.services.notifications import notification_send
from deployments.services.plans import deploy_plan_create
from hotdash.errors import Refused
from hotdash.integrations import APIError


def fly_machine_ids(*, environment: Environment) -> list[str]:
    """The ids of the machines the environment's Fly app runs now ([] when the app is new)."""
    machines = environment_machines(environment=environment)
    return [machine.id for machine in machines if machine.state != "destroyed"]


# --- the request -----------------------------------------------------------------------------


def _refuse(
    *, refusal: Refused, actor: Any, environment: Environment, ip: str | None, data: dict
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


def _static_refusal(
    *,
    environment: Environment,
    release: Release | None,
    requested_by: Any,
    reason: str,
    overrides: set[str],
    override_reason: str,
) -> Refused | None:
    if requested_by is not None and not policy.can_request_deploy(requested_by):
        return Refused("forbidden", "Your role does not allow requesting deploys.")
    if not reason.strip():
        return Refused("reason_required", "Say why you are deploying: a reason is required.")
    if overrides:
        unknown = overrides - policy.OVERRIDABLE
        if unknown:
            return Refused(
                "invalid_override",
                f"Unknown override(s): {', '.join(sorted(unknown))}; use "
                f"{', '.join(sorted(policy.OVERRIDABLE))}.",
            )
        if requested_by is None or not policy.can_override(requested_by):
            return Refused("invalid_override", "Only admins may override a gate.")
        if not override_reason.strip():
            return Refused(
                "invalid_override", "An override needs its own reason, recorded in the audit log."
            )
    if release is not None:
        if release.deleted_on_github_at is not None:
            return Refused(
                "release_deleted", f"{release.tag} was deleted on GitHub; it cannot be deployed."
            )
        if release.is_bad:
            return Refused(
                "release_bad",
                f"{release.tag} is marked bad: {release.bad_reason or 'no reason given'}.",
            )
        if release.validation != Release.Validation.VALID:
            failed = [r.get("message", "") for r in release.validation_results if not r.get("ok")]
            return Refused(
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
    emergency: bool = False,
    confirm_no_op: bool = False,
    ip: str | None = None,
) -> Deploy:
    """Request a deploy of ``release`` (or a preview ``build``) to ``environment``.

    A deploy of the release that is (or will be, when it starts) already live changes
    nothing: it is refused unless ``confirm_no_op`` says the requester means it.

    Checks role, reason, release, lock, freeze windows, the promotion rule and CI checks
    (admins may override the last four with ``overrides`` and ``override_reason``), asks Fly
    for the machines to plan the batches, then creates the deploy with its plan and either
    opens an approval request or queues it. An ``emergency`` rollback (rollback_request
    checks who may ask) passes the lock and freeze gates and is planned as one batch without
    a verification window. Raises :class:`Refused` (nothing created, one
    audit event) otherwise.
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
        "emergency": emergency,
    }

    def refuse(refusal: Refused) -> None:
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
            environment=environment,
            applied=wanted,
            kind=kind,
            now=timezone.now(),
            release=release,
            emergency=emergency,
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
            Refused(
                "upstream_error",
                f"Could not ask {error.provider} while planning; nothing was created. "
                f"Try again. ({error.status or 'no response'})",
            )
        )
    if not checks.green and "checks" not in wanted:
        failing = [f"{r.name} ({r.state})" for r in checks.failing]
        refuse(
            Refused(
                "checks_failing",
                (
                    f"Required CI checks on {commit_sha[:7]} are not green: {', '.join(failing)}."
                    if environment.app.required_checks
                    else f"CI checks on {commit_sha[:7]} are not green: {', '.join(failing)} "
                    "(the app names no required checks, so every check counts)."
                ),
                {"failing": [{"name": r.name, "state": r.state} for r in checks.failing]},
            )
        )

    with transaction.atomic():
        environment = (
            Environment.objects.select_for_update().select_related("app").get(pk=environment.pk)
        )
        refusal = deploy_gate_refusal(
            environment=environment,
            applied=wanted,
            kind=kind,
            now=timezone.now(),
            release=release,
            emergency=emergency,
        )
        outlook = (
            deploy_outlook(environment=environment, release=release)
            if kind == Deploy.Kind.DEPLOY and release is not None
            else None
        )
        no_op = outlook is not None and outlook.no_op
        if refusal is None and no_op and not confirm_no_op:
            refusal = Refused(
                "no_op_unconfirmed",
                f"{outlook.no_op_message} Confirm that you mean to deploy it anyway.",
            )
        if refusal is None:
            promotion = (
                promotion_check(environment=environment, release=release, now=timezone.now())
                if kind == Deploy.Kind.DEPLOY and release is not None
                else None
            )
            applied = {
                name
                for name, needed in (
                    ("lock", environment.is_locked),
                    ("freeze_window", freeze_window_active(environment=environment) is not None),
                    ("checks", not checks.green),
                    ("promotion", promotion is not None and not promotion.met),
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
                emergency=emergency,
                no_op=no_op,
                checks=checks,
                promotion=promotion,
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
    emergency: bool,
    no_op: bool,
    checks: ChecksVerdict,
    promotion: Promotion | None,
    machine_ids: list[str],
    ip: str | None,
) -> Deploy:
    source = release or build
    actor = requested_by or system_actor
    # The rehearsal is evidence while it still holds, met or overridden (too short so far).
    rehearsal = promotion.rehearsal if promotion and not promotion.broken_by else None
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
        rehearsal=rehearsal,
        fast_path=fast_path,
        emergency=emergency,
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
            "emergency": emergency,
            "no_op": no_op,
            "optional_checks_failing": [r.name for r in checks.warnings],
            "rehearsal_deploy": rehearsal.pk if rehearsal else None,
        },
        ip=ip,
        **about,
    )
    if applied:
        promotion_missing = promotion.missing if "promotion" in applied else ""
        record(
            actor=actor,
            verb="deploy.override",
            data={
                "overrides": sorted(applied),
                "reason": deploy.override_reason,
                "failing_checks": [r.name for r in checks.failing],
                "promotion_missing": promotion_missing,
            },
            ip=ip,
            **about,
        )
        notification_send(
            deploy=deploy,
            event="deploy.override",
            detail=f"{deploy.overridden_by.get_username()} overrode "
            f"{', '.join(deploy.override_labels)}: {deploy.override_reason}"
            + (f"\nMissing: {promotion_missing}" if promotion_missing else ""),
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

    Raises Refused when the deploy already started.
    """
    with transaction.atomic():
        approval_request_cancel(deploy=deploy, actor=actor, ip=ip)
        return deploy_cancel(deploy=deploy, actor=actor, reason=reason, ip=ip)
