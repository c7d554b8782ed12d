"""Reads for approval pages: the queue, the badge and everything the drawer shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from approvals import policy
from approvals.models import ApprovalRequest, Decision
from deployments.models import Deploy, DeployStep, FreezeWindow, Preview, Release


def _pending() -> Any:
    return ApprovalRequest.objects.filter(
        state=ApprovalRequest.State.PENDING, deploy__state=Deploy.State.AWAITING_APPROVAL
    )


# The same rows as _pending(), counted in plain SQL: the badge is on every page, and building
# the ORM query cost twice the query itself (docs/benchmarks.md, audit section). Tests hold the
# two equal (tests/audit/test_layout.py).
PENDING_COUNT_SQL = (
    f"SELECT COUNT(*) FROM {ApprovalRequest._meta.db_table} r "
    f"JOIN {Deploy._meta.db_table} d ON d.id = r.deploy_id "
    "WHERE r.state = %s AND d.state = %s"
)


def approval_count_pending() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            PENDING_COUNT_SQL,
            [ApprovalRequest.State.PENDING, Deploy.State.AWAITING_APPROVAL],
        )
        return cursor.fetchone()[0]


def approval_list_pending() -> list[ApprovalRequest]:
    return list(
        _pending()
        .select_related("deploy__environment__app", "deploy__release", "deploy__requested_by")
        .order_by("expires_at")
    )


def approval_get(*, pk: int) -> ApprovalRequest:
    return get_object_or_404(
        ApprovalRequest.objects.select_related(
            "deploy__environment__app",
            "deploy__environment__current_release",
            "deploy__environment__locked_by",
            "deploy__release",
            "deploy__previous_release",
            "deploy__requested_by",
            "deploy__overridden_by",
            "deploy__superseded_by",
        ),
        pk=pk,
    )


@dataclass(frozen=True)
class DrawerFacts:
    """What a person needs to decide one approval request."""

    approval: ApprovalRequest
    deploy: Deploy
    decisions: list[Decision]
    approvals_so_far: int
    eligible: list[Any]
    time_left: timedelta | None
    commits: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    changes: list[str]
    steps: list[DeployStep]
    freeze_windows: list[FreezeWindow]
    preview: Preview | None
    user_may_decide: bool
    user_refusal: str
    closed_by: Decision | None = None


def commits_between(*, previous: Release | None, target: Release | None) -> list[dict[str, Any]]:
    """The commits of every release after ``previous`` up to ``target``, oldest first, from
    the changelogs recorded at sync."""
    if target is None:
        return []
    releases = Release.objects.filter(app_id=target.app_id, published_at__lte=target.published_at)
    if previous is not None and previous.published_at and target.published_at:
        if previous.published_at >= target.published_at:
            releases = Release.objects.filter(pk=target.pk)
        else:
            releases = releases.filter(published_at__gt=previous.published_at)
    commits = []
    for release in releases.order_by("published_at", "id"):
        for group in (release.changelog or {}).get("groups", []):
            for entry in group.get("entries", []):
                commits.append(
                    {
                        "release": release.tag,
                        "sha": entry.get("sha", ""),
                        "message": entry.get("subject", ""),
                        "group": group.get("title", ""),
                        "author": entry.get("author", ""),
                        "prs": entry.get("prs", []),
                    }
                )
    return commits


def approval_drawer_facts(*, approval: ApprovalRequest, user: Any) -> DrawerFacts:
    deploy = approval.deploy
    environment = deploy.environment
    decisions = list(approval.decisions.select_related("user"))
    decided_ids = {decision.user_id for decision in decisions}
    now = timezone.now()
    pending = approval.state == ApprovalRequest.State.PENDING
    candidates = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=[policy.APPROVER, policy.ADMIN]))
        .distinct()
        .order_by("username")
    )
    eligible = (
        [
            candidate
            for candidate in candidates
            if policy.is_eligible_approver(
                user=candidate, request=approval, decided_user_ids=decided_ids
            )
        ]
        if pending
        else []
    )
    code, refusal = policy.approval_refusal(
        user=user, request=approval, decided_user_ids=decided_ids
    )
    steps = list(deploy.steps.all())
    verify = next((s for s in steps if s.kind == DeployStep.Kind.VERIFY_ARTIFACT), None)
    return DrawerFacts(
        approval=approval,
        deploy=deploy,
        decisions=decisions,
        approvals_so_far=sum(d.verdict == Decision.Verdict.APPROVE for d in decisions),
        eligible=eligible,
        time_left=max(approval.expires_at - now, timedelta(0)) if pending else None,
        commits=commits_between(previous=deploy.previous_release, target=deploy.release),
        checks=(verify.data.get("checks", []) if verify else []),
        changes=policy.changes_since_request(request=approval, release=deploy.release)
        if pending
        else [],
        steps=steps,
        freeze_windows=list(environment.freeze_windows.filter(ends_at__gt=now)),
        preview=Preview.objects.filter(app_id=environment.app_id, head_sha=deploy.commit_sha)
        .exclude(url="")
        .first()
        if deploy.commit_sha
        else None,
        user_may_decide=pending and not code and approval.expires_at > now,
        user_refusal=refusal,
        closed_by=decisions[-1] if decisions and not pending else None,
    )
