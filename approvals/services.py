"""Approval requests and decisions: open, decide (an approval supersedes older requests),
expire, void.

Every function owns its transaction, locks the approval request row (then its deploy row, in
that order everywhere) and writes its audit event(s) in the same transaction. A refused
decision or bypass still commits its ``approval.refused`` event (and an expiry or voiding it
caused) before :class:`~hotdash.errors.Refused` is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from approvals import auth, policy
from approvals.audit import record
from approvals.handoff import approval_announced, deploy_approved, deploy_replaced, hand_off
from approvals.models import ApprovalRequest, Decision
from deployments.models import Deploy, DeployLog
from hotdash.errors import Refused

# The codes approval_decide refuses with. The break-glass bypass (drawer only, not in the API)
# may answer closed, expired and changed too, and not_admin, bypass_disabled, reason_required,
# throttled and reauth_failed.
DECISION_REFUSALS = (
    "not_approver",
    "self_approval",
    "commit_author",
    "already_decided",
    "closed",
    "expired",
    "changed",
    "comment_required",
    "invalid_verdict",
)


def _audit(
    *, request: ApprovalRequest, actor: Any, verb: str, data: dict | None = None, ip=None
) -> None:
    environment = request.deploy.environment
    record(
        actor=actor,
        verb=verb,
        target=request,
        scope=environment,
        data={"deploy": request.deploy_id, **(data or {})},
        ip=ip,
    )


def _close(
    *,
    request: ApprovalRequest,
    deploy: Deploy,
    state: str,
    deploy_state: str,
    now: datetime,
    error: str = "",
) -> None:
    request.state = state
    request.decided_at = now
    request.save(update_fields=["state", "decided_at"])
    deploy.state = deploy_state
    deploy.finished_at = now
    deploy.error = error or deploy.error
    deploy.save(update_fields=["state", "finished_at", "error"])


def _locked(request_id: int) -> tuple[ApprovalRequest, Deploy]:
    request = (
        ApprovalRequest.objects.select_for_update(of=("self",))
        .select_related("deploy__environment__app", "deploy__release")
        .get(pk=request_id)
    )
    deploy = Deploy.objects.select_for_update().get(pk=request.deploy_id)
    request.deploy = deploy
    return request, deploy


@transaction.atomic
def approval_request_open(*, deploy: Deploy, actor: Any, ip: str | None = None) -> ApprovalRequest:
    """Put ``deploy`` (state requested) in front of approvers, bound to its exact bits.

    Nothing else changes: older pending requests for the environment stay open until this one
    is approved (a request that is rejected, expires or is withdrawn leaves them alone).
    """
    environment = deploy.environment
    now = timezone.now()
    request = ApprovalRequest.objects.create(
        deploy=deploy,
        approvals_required=policy.approvals_needed(environment),
        bound_release_version=deploy.release.version if deploy.release else "",
        bound_commit_sha=deploy.commit_sha,
        bound_artifact_sha256=deploy.artifact_sha256,
        bound_image_digest=deploy.image_digest,
        expires_at=now + policy.request_lifetime(environment),
        created_at=now,
    )
    Deploy.objects.filter(pk=deploy.pk, state=Deploy.State.REQUESTED).update(
        state=Deploy.State.AWAITING_APPROVAL
    )
    deploy.state = Deploy.State.AWAITING_APPROVAL
    _audit(
        request=request,
        actor=actor,
        verb="approval.requested",
        data={"required": request.approvals_required, "expires_at": request.expires_at},
        ip=ip,
    )
    hand_off(
        approval_announced,
        deploy=deploy,
        event="approval.requested",
        detail=f"Needs {request.approvals_required} approval(s) by "
        f"{request.expires_at:%Y-%m-%d %H:%M} UTC. Reason: {deploy.reason}",
    )
    return request


def _supersede_older(*, request: ApprovalRequest, actor: Any, now, ip) -> None:
    """The approved ``request`` replaces the requests for its environment that were asked
    before it and are still pending: they end superseded."""
    deploy = request.deploy
    older = ApprovalRequest.objects.filter(
        state=ApprovalRequest.State.PENDING,
        deploy__environment_id=deploy.environment_id,
        pk__lt=request.pk,
    )
    for old_id in older.order_by("pk").values_list("pk", flat=True):
        old, old_deploy = _locked(old_id)
        if old.state != ApprovalRequest.State.PENDING:
            continue
        old.state = ApprovalRequest.State.SUPERSEDED
        old.decided_at = now
        old.save(update_fields=["state", "decided_at"])
        _audit(
            request=old,
            actor=actor,
            verb="approval.superseded",
            data={"superseded_by": deploy.pk},
            ip=ip,
        )
        hand_off(deploy_replaced, old=old_deploy, new=deploy, actor=actor)


def _state_refusal(*, request: ApprovalRequest, deploy: Deploy, now) -> tuple[str, str]:
    """(code, message) when the request can no longer be settled by anyone; may close it."""
    if request.state != ApprovalRequest.State.PENDING:
        return "closed", f"This request is already {request.get_state_display().lower()}."
    if deploy.state != Deploy.State.AWAITING_APPROVAL:
        # The deploy was cancelled or superseded elsewhere; the request follows it.
        closed = (
            ApprovalRequest.State.SUPERSEDED
            if deploy.state == Deploy.State.SUPERSEDED
            else ApprovalRequest.State.CANCELLED
        )
        request.state = closed
        request.decided_at = now
        request.save(update_fields=["state", "decided_at"])
        return "closed", f"The deploy is {deploy.get_state_display().lower()}."
    if request.expires_at <= now:
        _expire(request=request, deploy=deploy, now=now)
        return "expired", f"This request expired at {request.expires_at:%Y-%m-%d %H:%M} UTC."
    if deploy.release_id:
        changes = policy.changes_since_request(request=request, release=deploy.release)
        if changes:
            _void(request=request, deploy=deploy, changes=changes, now=now)
            return "changed", "The release changed since it was requested: " + "; ".join(changes)
    return "", ""


def _refusal(
    *, request: ApprovalRequest, deploy: Deploy, user: Any, verdict: str, comment: str, now
) -> tuple[str, str]:
    """(code, message) when the decision must not be recorded; may close the request first."""
    if not policy.can_approve(user):
        return "not_approver", "Only approvers may approve or reject deploys."
    code, message = _state_refusal(request=request, deploy=deploy, now=now)
    if code:
        return code, message
    decided = set(request.decisions.values_list("user_id", flat=True))
    code, message = policy.approval_refusal(user=user, request=request, decided_user_ids=decided)
    if code:
        return code, message
    if verdict not in Decision.Verdict.values:
        return "invalid_verdict", "Decide approve or reject."
    if verdict == Decision.Verdict.REJECT and not comment.strip():
        return "comment_required", "Say why you reject: a reason is required."
    return "", ""


def approval_decide(
    *,
    request: ApprovalRequest,
    user: Any,
    verdict: str,
    comment: str = "",
    ip: str | None = None,
) -> ApprovalRequest:
    """Record ``user``'s approve/reject on a pending request.

    The final approval queues the deploy in the same transaction (its run message is sent on
    commit); a rejection ends request and deploy ``rejected``. Raises Refused
    after committing an ``approval.refused`` event when policy or state forbids the decision.
    """
    return _settle(
        request=request,
        user=user,
        attempt=verdict,
        ip=ip,
        refusal=lambda locked, deploy, now: _refusal(
            request=locked, deploy=deploy, user=user, verdict=verdict, comment=comment, now=now
        ),
        apply=lambda locked, deploy: _decide(
            request=locked, deploy=deploy, user=user, verdict=verdict, comment=comment, ip=ip
        ),
    )


def approval_bypass(
    *,
    request: ApprovalRequest,
    user: Any,
    reason: str,
    password: str,
    ip: str | None = None,
    http_request: HttpRequest | None = None,
) -> ApprovalRequest:
    """Break-glass: an admin queues a pending deploy without its missing approvals.

    Needs the admin role, an environment that allows it, a reason and the admin's password
    again (failures feed the sign-in throttle through Django's ``user_login_failed`` signal).
    Queues the deploy exactly as a final approval does, writes ``approval.bypassed`` and
    notifies ``approval.bypassed``. Raises Refused after committing an
    ``approval.refused`` event otherwise.
    """
    return _settle(
        request=request,
        user=user,
        attempt="bypass",
        ip=ip,
        refusal=lambda locked, deploy, now: _bypass_refusal(
            request=locked,
            deploy=deploy,
            user=user,
            reason=reason,
            password=password,
            http_request=http_request,
            now=now,
        ),
        apply=lambda locked, deploy: _bypass(
            request=locked, deploy=deploy, user=user, reason=reason, ip=ip
        ),
    )


def _settle(
    *,
    request: ApprovalRequest,
    user: Any,
    attempt: str,
    ip: str | None,
    refusal: Callable[[ApprovalRequest, Deploy, datetime], tuple[str, str]],
    apply: Callable[[ApprovalRequest, Deploy], None],
) -> ApprovalRequest:
    """Lock the request and its deploy, then either ``apply`` the change or commit the
    ``approval.refused`` event and raise."""
    with transaction.atomic(durable=True):
        now = timezone.now()
        locked, deploy = _locked(request.pk)
        code, message = refusal(locked, deploy, now)
        if code:
            _audit(
                request=locked,
                actor=user,
                verb="approval.refused",
                data={"reason": code, "message": message, "verdict": attempt},
                ip=ip,
            )
        else:
            apply(locked, deploy)
    if code:
        raise Refused(code, message)
    return locked


def _bypass_refusal(
    *,
    request: ApprovalRequest,
    deploy: Deploy,
    user: Any,
    reason: str,
    password: str,
    http_request: HttpRequest | None,
    now,
) -> tuple[str, str]:
    if not policy.can_administer(user):
        return "not_admin", "Only admins may bypass an approval."
    code, message = _state_refusal(request=request, deploy=deploy, now=now)
    if code:
        return code, message
    if not policy.can_bypass(user, deploy.environment):
        return "bypass_disabled", f"Approval bypass is disabled for {deploy.environment}."
    if not reason.strip():
        return "reason_required", "Say why you bypass the approval: a reason is required."
    username = user.get_username()
    if auth.locked(http_request, username=username):
        return "throttled", auth.THROTTLED_MESSAGE
    confirmed = authenticate(http_request, username=username, password=password)
    if confirmed is None or confirmed.pk != user.pk:
        return "reauth_failed", "That is not your password: the approval was not bypassed."
    auth.success_reset(username=username)
    return "", ""


def _decide(
    *, request: ApprovalRequest, deploy: Deploy, user: Any, verdict: str, comment: str, ip
) -> None:
    now = timezone.now()
    Decision.objects.create(
        request=request, user=user, verdict=verdict, comment=comment.strip(), created_at=now
    )
    approvals = request.decisions.filter(verdict=Decision.Verdict.APPROVE).count()
    _audit(
        request=request,
        actor=user,
        verb=f"approval.{'approved' if verdict == Decision.Verdict.APPROVE else 'rejected'}",
        data={
            "comment": comment.strip(),
            "approvals": approvals,
            "required": request.approvals_required,
        },
        ip=ip,
    )
    if verdict == Decision.Verdict.REJECT:
        _close(
            request=request,
            deploy=deploy,
            state=ApprovalRequest.State.REJECTED,
            deploy_state=Deploy.State.REJECTED,
            now=now,
        )
        hand_off(
            approval_announced,
            deploy=deploy,
            event="approval.rejected",
            detail=f"Rejected by {user.get_username()}: {comment.strip()}",
        )
    elif approvals >= request.approvals_required:
        _queue_approved(
            request=request,
            deploy=deploy,
            actor=user,
            now=now,
            event="approval.approved",
            detail=f"Approved by {user.get_username()}"
            + (f": {comment.strip()}" if comment.strip() else "")
            + "; queued.",
            ip=ip,
        )


def _bypass(*, request: ApprovalRequest, deploy: Deploy, user: Any, reason: str, ip) -> None:
    now = timezone.now()
    reason = reason.strip()
    name = user.get_username()
    approvals = request.decisions.filter(verdict=Decision.Verdict.APPROVE).count()
    _audit(
        request=request,
        actor=user,
        verb="approval.bypassed",
        data={
            "reason": reason,
            "approvals": approvals,
            "required": request.approvals_required,
            "own_request": deploy.requested_by_id == user.pk,
        },
        ip=ip,
    )
    DeployLog.objects.create(
        deploy=deploy,
        level=DeployLog.Level.WARNING,
        message=f"Approval bypassed by {name}: {reason}",
    )
    _queue_approved(
        request=request,
        deploy=deploy,
        actor=user,
        now=now,
        event="approval.bypassed",
        detail=f"Approval bypassed by {name} with {approvals} of {request.approvals_required} "
        f"approvals: {reason}; queued.",
        ip=ip,
    )


def _queue_approved(
    *, request: ApprovalRequest, deploy: Deploy, actor: Any, now, event: str, detail: str, ip
) -> None:
    """The gate is passed: the request ends approved, the deploy is durably queued (its run
    message goes out on commit) and the older pending requests it replaces end superseded."""
    request.state = ApprovalRequest.State.APPROVED
    request.decided_at = now
    request.save(update_fields=["state", "decided_at"])
    hand_off(deploy_approved, deploy=deploy, actor=actor)
    hand_off(approval_announced, deploy=deploy, event=event, detail=detail)
    _supersede_older(request=request, actor=actor, now=now, ip=ip)


def _expire(*, request: ApprovalRequest, deploy: Deploy, now) -> None:
    _close(
        request=request,
        deploy=deploy,
        state=ApprovalRequest.State.EXPIRED,
        deploy_state=Deploy.State.EXPIRED,
        now=now,
    )
    _audit(request=request, actor="system", verb="approval.expired", data={"at": now})
    hand_off(
        approval_announced,
        deploy=deploy,
        event="approval.expired",
        detail=f"No decision before {request.expires_at:%Y-%m-%d %H:%M} UTC.",
    )


def _void(*, request: ApprovalRequest, deploy: Deploy, changes: list[str], now) -> None:
    _close(
        request=request,
        deploy=deploy,
        state=ApprovalRequest.State.VOIDED,
        deploy_state=Deploy.State.CANCELLED,
        now=now,
        error="Approval voided: " + "; ".join(changes),
    )
    _audit(request=request, actor="system", verb="approval.voided", data={"changes": changes})


def approval_expire_due(*, now: datetime | None = None) -> int:
    """Expire every pending request past its lifetime (beat); returns how many ended."""
    now = now or timezone.now()
    due = ApprovalRequest.objects.filter(state=ApprovalRequest.State.PENDING, expires_at__lte=now)
    expired = 0
    for request_id in due.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            request, deploy = _locked(request_id)
            if request.state == ApprovalRequest.State.PENDING and request.expires_at <= now:
                _expire(request=request, deploy=deploy, now=now)
                expired += 1
    return expired


def approval_void_changed(*, release: Any = None) -> int:
    """Void pending requests whose release no longer has the bits that were requested
    (optionally only those of ``release``); returns how many were voided."""
    pending = ApprovalRequest.objects.filter(
        state=ApprovalRequest.State.PENDING, deploy__release__isnull=False
    ).select_related("deploy__release")
    if release is not None:
        pending = pending.filter(deploy__release=release)
    stale = [
        request.pk
        for request in pending
        if policy.changes_since_request(request=request, release=request.deploy.release)
    ]
    voided = 0
    for request_id in stale:
        with transaction.atomic():
            request, deploy = _locked(request_id)
            changes = policy.changes_since_request(request=request, release=deploy.release)
            if request.state == ApprovalRequest.State.PENDING and changes:
                _void(request=request, deploy=deploy, changes=changes, now=timezone.now())
                voided += 1
    return voided


@transaction.atomic
def approval_request_cancel(*, deploy: Deploy, actor: Any, ip: str | None = None) -> None:
    """Close the pending request of a deploy that is being cancelled (call inside the cancel's
    transaction)."""
    request = ApprovalRequest.objects.select_for_update().filter(deploy=deploy).first()
    if request is None or request.state != ApprovalRequest.State.PENDING:
        return
    request.state = ApprovalRequest.State.CANCELLED
    request.decided_at = timezone.now()
    request.save(update_fields=["state", "decided_at"])
    _audit(request=request, actor=actor, verb="approval.cancelled", ip=ip)
