"""Automatic rollback: a failed deploy or rollback hands the machines it changed to a new
``auto_rollback`` deploy back to the image it replaced, queued without approval in the failing
transaction. A health failure also marks the release bad and locks the environment."""

from __future__ import annotations

from django.utils import timezone

from approvals.models import AuditEvent
from deployments.engine.context import StepFailed
from deployments.engine.hooks import Hooks
from deployments.engine.records import audit, log_line
from deployments.models import Deploy, DeployLog, DeployStep

StepState = DeployStep.State
ROLLBACK_KINDS = (Deploy.Kind.DEPLOY, Deploy.Kind.ROLLBACK)


def no_rollback_reason(deploy: Deploy) -> str:
    if deploy.kind == Deploy.Kind.AUTO_ROLLBACK:
        why = "this was itself an automatic rollback; the environment needs attention."
    elif deploy.kind == Deploy.Kind.PREVIEW:
        why = "previews are not rolled back; the next push deploys again."
    elif deploy.kind == Deploy.Kind.RECONCILE:
        why = "a reconcile keeps every image; the environment needs attention."
    else:
        why = "there is no previous image to return to; the environment needs attention."
    return "Nothing was rolled back automatically: " + why


def _failure_cause(failed: Deploy, failure: StepFailed) -> tuple[str, str]:
    """(cause, what happened) for the log, audit and rollback reason: ``health`` (failed its
    health checks), ``aborted`` (by whom and why) or ``error`` (anything else)."""
    if failure.health:
        return "health", f"failed its health checks: {failure.message}"
    if failure.verb == "deploy.aborted":
        asked = (
            AuditEvent.objects.filter(
                verb="deploy.abort_requested", target_type="deploy", target_id=str(failed.pk)
            )
            .order_by("-id")
            .values_list("actor_name", "data")
            .first()
        )
        who, data = asked or ("someone", {})
        return "aborted", f"was aborted by {who}: {data.get('reason') or 'no reason given'}"
    return "error", f"failed with an error: {failure.message}"


def start(
    *, failed: Deploy, machines: list[str], failure: StepFailed, hooks: Hooks
) -> Deploy | None:
    """Create and queue (no approval) the deploy that puts ``machines`` back on the image
    ``failed`` replaced. Runs inside the failing transaction."""
    if failed.kind not in ROLLBACK_KINDS or not failed.previous_image_ref:
        return None
    env = failed.environment
    previous = failed.previous_release
    cause, happened = _failure_cause(failed, failure)
    rollback = Deploy.objects.create(
        environment=env,
        release=previous,
        kind=Deploy.Kind.AUTO_ROLLBACK,
        requested_by_system="system",
        reason=f"Automatic rollback after deploy #{failed.pk} {happened}"[:2000],
        previous_release=failed.release,
        previous_image_ref=failed.image_ref,
        image_ref=failed.previous_image_ref,
        image_digest=previous.image_digest if previous else "",
        artifact_sha256=previous.artifact_sha256 if previous else "",
        commit_sha=previous.commit_sha if previous else "",
        rollback_of=failed,
    )
    target = previous.tag if previous else failed.previous_image_ref
    hooks.plan_create(
        deploy=rollback,
        target_name=target,
        machine_ids=machines,
        verify_data={
            "image_ref": rollback.image_ref,
            "image_digest": rollback.image_digest,
            "artifact_sha256": rollback.artifact_sha256,
        },
        create_missing=False,  # only the machines that changed go back
    )
    position = failed.steps.count() + 1
    DeployStep.objects.create(
        deploy=failed,
        position=position,
        kind=DeployStep.Kind.ROLLBACK_MACHINES,
        title=f"Roll {', '.join(machines)} back to {target}",
        state=StepState.DONE,
        detail=f"Handed to automatic rollback deploy #{rollback.pk}.",
        data={"machines": machines, "rollback_deploy": rollback.pk},
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    log_line(
        failed,
        f"Rolling machines {', '.join(machines)} back to {target} (deploy #{rollback.pk}): "
        f"deploy #{failed.pk} {happened}"[:2000],
        DeployLog.Level.WARNING,
    )
    audit(
        deploy=rollback,
        actor="system",
        verb="deploy.auto_rollback_started",
        data={
            "rollback_of": failed.pk,
            "machines": machines,
            "image_ref": rollback.image_ref,
            "cause": cause,
            "reason": rollback.reason,
        },
    )
    hooks.queue(deploy=rollback, actor="system")
    if cause != "health":
        return rollback
    # A release that failed its health checks stays rolled back, as after a person's rollback:
    # it cannot go out again and the environment takes no new deploys until someone has looked
    # (both cleared with a reason). An abort or an error says nothing against the release.
    if failed.release is not None:
        hooks.release_mark_bad(
            release=failed.release,
            actor="system",
            reason=f"Failed its health checks in {env.name} (deploy #{failed.pk}); "
            f"rolled back automatically by deploy #{rollback.pk}.",
        )
    hooks.environment_lock(
        environment=env,
        actor="system",
        reason=f"Automatic rollback #{rollback.pk} after deploy #{failed.pk} failed its health "
        "checks. Unlock once the cause is understood.",
    )
    return rollback
