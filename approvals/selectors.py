"""Reads for approval pages: the queue, the badge and everything the drawer shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from approvals import policy
from approvals.models import ApprovalRequest, AuditEvent, Decision
from deployments.models import (
    App,
    Deploy,
    DeployStep,
    Environment,
    FreezeWindow,
    GitHubIdentity,
    Preview,
    Release,
)
from hotdash.queries import ConstantIn, one_or_404


def _pending() -> Any:
    return ApprovalRequest.objects.filter(
        ConstantIn(F("deploy__state"), (Deploy.State.AWAITING_APPROVAL,)),
        state=ApprovalRequest.State.PENDING,
    )


def _waiting_for(user: Any) -> Any:
    """The pending requests ``user`` may decide now (policy.approval_refusal): an approver's,
    not their own unless the environment allows it, not yet decided by them, not past their
    expiry, and, on an app that counts commit authors as requesters, not of a release they
    wrote a commit of."""
    if not policy.can_approve(user):
        return ApprovalRequest.objects.none()
    waiting = _waiting_in_sql(user)
    return waiting.exclude(pk__in=_commit_authored(user, waiting))


def _waiting_in_sql(user: Any) -> Any:
    return (
        _pending()
        .filter(expires_at__gt=timezone.now())
        .filter(Q(deploy__environment__allow_self_approval=True) | ~Q(deploy__requested_by=user))
        .exclude(decisions__user=user)
    )


def _commit_authored(user: Any, waiting: Any) -> list[int]:
    """Of ``waiting``, the requests on apps that count commit authors as requesters whose
    release ``user`` wrote a commit of (the changelog is JSON: read in Python)."""
    flagged = waiting.filter(deploy__environment__app__commit_authors_are_requesters=True)
    return [
        request.pk
        for request in flagged.select_related("deploy__release")
        if policy.wrote_commit_of(user, request.deploy.release)
    ]


# The same rows as _waiting_in_sql(), counted in plain SQL: the badge is on every page, and
# building the ORM query cost twice the query itself (docs/benchmarks.md, audit section).
# The second column counts those of them that policy.wrote_commit_of must still judge (apps
# that count commit authors as requesters, for someone who signs in with GitHub): usually 0,
# so the badge stays one query. Tests hold it equal to _waiting_for() (tests/audit/test_layout.py).
WAITING_COUNT_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN a.commit_authors_are_requesters AND EXISTS "
    f"(SELECT 1 FROM {GitHubIdentity._meta.db_table} i WHERE i.user_id = %s) "
    "THEN 1 ELSE 0 END), 0) "
    f"FROM {ApprovalRequest._meta.db_table} r "
    f"JOIN {Deploy._meta.db_table} d ON d.id = r.deploy_id "
    f"JOIN {Environment._meta.db_table} e ON e.id = d.environment_id "
    f"JOIN {App._meta.db_table} a ON a.id = e.app_id "
    "WHERE r.state = %s AND d.state = %s AND r.expires_at > %s "
    "AND (e.allow_self_approval OR d.requested_by_id IS NULL OR d.requested_by_id <> %s) "
    f"AND NOT EXISTS (SELECT 1 FROM {Decision._meta.db_table} x "
    "WHERE x.request_id = r.id AND x.user_id = %s)"
)


def approval_count_waiting_for(user: Any) -> int:
    """The nav badge: how many requests ``user`` may decide now (0 for non-approvers)."""
    if not policy.can_approve(user):
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            WAITING_COUNT_SQL,
            [
                user.pk,
                ApprovalRequest.State.PENDING,
                Deploy.State.AWAITING_APPROVAL,
                timezone.now(),
                user.pk,
                user.pk,
            ],
        )
        count, to_judge = cursor.fetchone()
    if to_judge:
        count -= len(_commit_authored(user, _waiting_in_sql(user)))
    return count


def users_holding(role: str) -> list[Any]:
    """Active users holding ``role``: members of a group granting it, and superusers; each with
    its roles known (policy.roles_of asks no query for them): one more query for the groups of
    those that are not superusers, rather than one each."""
    user_model = get_user_model()
    users = list(
        user_model.objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=policy.groups_granting(role)))
        .distinct()
        .order_by("username")
    )
    members = [user for user in users if not user.is_superuser]
    if members:
        names: dict[int, set[str]] = {user.pk: set() for user in members}
        memberships = user_model.groups.through.objects.filter(user_id__in=names)
        for user_id, name in memberships.values_list("user_id", "group__name"):
            names[user_id].add(name)
        for user in members:
            policy.remember_roles(user, group_names=names[user.pk])
    return users


def approver_candidates() -> list[Any]:
    """Active users holding the approver role (admins and superusers included)."""
    return users_holding(policy.APPROVER)


@dataclass(frozen=True)
class Gate:
    """Who can still approve a request, and whether that is enough."""

    eligible: list[Any]
    still_needed: int
    # Why nobody can satisfy the request (policy.unsatisfiable_reason); "" when someone can.
    unsatisfiable: str


def approval_gate(
    *, approval: ApprovalRequest, decisions: list[Decision], candidates: list[Any]
) -> Gate:
    if approval.state != ApprovalRequest.State.PENDING:
        return Gate(eligible=[], still_needed=0, unsatisfiable="")
    decided_ids = {decision.user_id for decision in decisions}
    eligible = [
        candidate
        for candidate in candidates
        if policy.is_eligible_approver(
            user=candidate, request=approval, decided_user_ids=decided_ids
        )
    ]
    approvals = sum(d.verdict == Decision.Verdict.APPROVE for d in decisions)
    still_needed = max(approval.approvals_required - approvals, 0)
    return Gate(
        eligible=eligible,
        still_needed=still_needed,
        unsatisfiable=policy.unsatisfiable_reason(
            still_needed=still_needed,
            eligible=len(eligible),
            environment=approval.deploy.environment,
        ),
    )


@dataclass(frozen=True)
class PendingRow:
    approval: ApprovalRequest
    gate: Gate
    # Why the viewing user may not decide it now ("" when they may).
    not_yours: str


@dataclass(frozen=True)
class Queue:
    """The pending requests split for one user: the ones they may decide now, and the rest
    (their own, the ones they already decided, the ones they may not decide)."""

    waiting_for_you: list[PendingRow]
    waiting_for_others: list[PendingRow]


def approval_queue_for(user: Any) -> Queue:
    """The queue as ``user`` sees it, soonest to expire first, each request with whether
    anyone can still approve it."""
    pending = list(
        _pending()
        .select_related("deploy__environment__app", "deploy__release", "deploy__requested_by")
        # What the queue's rows and policy.approval_refusal read: the rest of these wide rows
        # (a deploy's plan and overrides, an environment's machine config) is never read.
        .only(
            "state",
            "approvals_required",
            "expires_at",
            "deploy__image_ref",
            "deploy__reason",
            "deploy__requested_by_system",
            "deploy__environment__name",
            "deploy__environment__allow_self_approval",
            "deploy__environment__app__name",
            "deploy__environment__app__commit_authors_are_requesters",
            "deploy__release__tag",
            "deploy__release__changelog",
            "deploy__requested_by__username",
        )
        .prefetch_related("decisions")
        .order_by("expires_at")
    )
    candidates = approver_candidates() if pending else []
    now = timezone.now()
    rows = []
    for approval in pending:
        decisions = list(approval.decisions.all())
        _code, refusal = policy.approval_refusal(
            user=user, request=approval, decided_user_ids={d.user_id for d in decisions}
        )
        if not refusal and approval.expires_at <= now:
            refusal = "Expired; it closes on the next sweep."
        gate = approval_gate(approval=approval, decisions=decisions, candidates=candidates)
        rows.append(PendingRow(approval=approval, gate=gate, not_yours=refusal))
    return Queue(
        waiting_for_you=[row for row in rows if not row.not_yours],
        waiting_for_others=[row for row in rows if row.not_yours],
    )


def approval_get(*, pk: int | None = None, deploy_id: int | None = None) -> ApprovalRequest:
    """One request by its own id or by its deploy's (pages that list deploys link by deploy)."""
    lookup = {"pk": pk} if deploy_id is None else {"deploy_id": deploy_id}
    return one_or_404(
        ApprovalRequest.objects.select_related(
            "deploy__environment__app",
            "deploy__environment__current_release",
            "deploy__environment__locked_by",
            "deploy__release",
            "deploy__previous_release",
            "deploy__requested_by",
            "deploy__rehearsal__environment",
        )
        # Only with an admin's override: no query otherwise. Joined, it took the planner to
        # twelve tables, past geqo_threshold.
        .prefetch_related("deploy__overridden_by"),
        **lookup,
    )


@dataclass(frozen=True)
class Closer:
    """Who or what closed a request: a person's own words in ``comment``, the system's in
    ``detail``; ``bypassed`` when an admin passed the gate without the approvals."""

    who: str
    comment: str = ""
    detail: str = ""
    bypassed: bool = False


def approval_bypass_of(approval: ApprovalRequest) -> Closer | None:
    """The admin and reason of a break-glass bypass of ``approval``, if it was bypassed."""
    if approval.state != ApprovalRequest.State.APPROVED:
        return None
    event = (
        AuditEvent.objects.filter(
            target_type=ApprovalRequest._meta.model_name,
            target_id=str(approval.pk),
            verb="approval.bypassed",
        )
        .only("actor_name", "data")
        .first()
    )
    if event is None:
        return None
    return Closer(who=event.actor_name, comment=event.data.get("reason", ""), bypassed=True)


@dataclass(frozen=True)
class DrawerFacts:
    """What a person needs to decide one approval request."""

    approval: ApprovalRequest
    deploy: Deploy
    decisions: list[Decision]
    approvals_so_far: int
    gate: Gate
    time_left: timedelta | None
    # What the commits are counted from: live now while pending, live when asked once closed.
    base_label: str
    # Pending, and something else went live since the request: ``asked_label`` was live then.
    live_moved: bool
    asked_label: str
    commits: list[dict[str, Any]]
    going_back: bool
    checks: list[dict[str, Any]]
    changes: list[str]
    steps: list[DeployStep]
    freeze_windows: list[FreezeWindow]
    previews: list[Preview]
    user_may_decide: bool
    user_refusal: str
    # The break-glass form is shown (an admin, pending, the environment allows it).
    user_may_bypass: bool
    closed_by: Closer | None = None


def _label(release: Release | None, image_ref: str) -> str:
    return release.tag if release else image_ref or "nothing"


def commits_between(
    *, base: Release | None, target: Release | None
) -> tuple[list[dict[str, Any]], bool]:
    """The commits that change when ``target`` replaces ``base``, oldest first, from the
    changelogs recorded at sync, and whether they go away (``target`` is older than ``base``:
    the commits of the releases after ``target`` up to ``base``)."""
    if target is None or (base is not None and base.pk == target.pk):
        return [], False
    releases = Release.objects.filter(app_id=target.app_id)
    going_back = False
    if target.published_at is None:
        releases = releases.filter(pk=target.pk)
    elif base is None or base.published_at is None:
        releases = releases.filter(published_at__lte=target.published_at)
    elif base.published_at < target.published_at:
        releases = releases.filter(
            published_at__gt=base.published_at, published_at__lte=target.published_at
        )
    else:
        going_back = True
        releases = releases.filter(
            published_at__gt=target.published_at, published_at__lte=base.published_at
        )
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
    return commits, going_back


def _previews(*, deploy: Deploy, commits: list[dict[str, Any]]) -> list[Preview]:
    """The previews of the pull requests a deploy brings (a release's commits are merge or
    squash commits, so its PR numbers find them; a preview of the very commit counts too),
    live ones first."""
    numbers = {pr["number"] for commit in commits for pr in commit["prs"]}
    if not numbers and not deploy.commit_sha:
        return []
    wanted = Q(pr_number__in=numbers)
    if deploy.commit_sha:
        wanted |= Q(head_sha=deploy.commit_sha)
    previews = Preview.objects.filter(wanted, app_id=deploy.environment.app_id).exclude(url="")
    return sorted(previews, key=lambda p: (p.state == Preview.State.DESTROYED, p.pr_number))


_CLOSING_EVENTS = {
    ApprovalRequest._meta.model_name: (
        "approval.expired",
        "approval.voided",
        "approval.cancelled",
        "approval.superseded",
    ),
    Deploy._meta.model_name: ("deploy.cancelled", "deploy.superseded"),
}


def _closer(*, approval: ApprovalRequest, decisions: list[Decision]) -> Closer | None:
    """Who closed a request: the deciding approver when approved or rejected, else whoever the
    audit log names (the system for expiry and voiding, the canceller, the newer request's
    requester; a request that followed its deploy has only the deploy's event)."""
    State = ApprovalRequest.State
    if approval.state == State.PENDING:
        return None
    if approval.state in (State.APPROVED, State.REJECTED):
        bypass = approval_bypass_of(approval)
        if bypass is not None:
            return bypass
        if not decisions:
            return None
        decision = decisions[-1]
        return Closer(who=decision.user.get_username(), comment=decision.comment)
    targets = {
        ApprovalRequest._meta.model_name: str(approval.pk),
        Deploy._meta.model_name: str(approval.deploy_id),
    }
    wanted = Q()
    for target_type, verbs in _CLOSING_EVENTS.items():
        wanted |= Q(target_type=target_type, target_id=targets[target_type], verb__in=verbs)
    events = {
        event.target_type: event
        for event in AuditEvent.objects.filter(wanted)
        .order_by("id")
        .only("actor_name", "verb", "target_type", "data")
    }
    request_event = events.get(ApprovalRequest._meta.model_name)
    deploy_event = events.get(Deploy._meta.model_name)
    event = request_event or deploy_event
    who = event.actor_name if event else ""
    if approval.state == State.EXPIRED:
        return Closer(
            who=who, detail=f"no decision before {approval.expires_at:%Y-%m-%d %H:%M} UTC"
        )
    if approval.state == State.VOIDED:
        changes = request_event.data.get("changes", []) if request_event else []
        return Closer(who=who, detail="the release changed: " + "; ".join(changes))
    if approval.state == State.CANCELLED and deploy_event:
        return Closer(who=who, comment=deploy_event.data.get("reason", ""))
    return Closer(who=who)


def approval_drawer_facts(*, approval: ApprovalRequest, user: Any) -> DrawerFacts:
    deploy = approval.deploy
    environment = deploy.environment
    decisions = list(approval.decisions.select_related("user"))
    decided_ids = {decision.user_id for decision in decisions}
    now = timezone.now()
    pending = approval.state == ApprovalRequest.State.PENDING
    gate = approval_gate(
        approval=approval,
        decisions=decisions,
        candidates=approver_candidates() if pending else [],
    )
    code, refusal = policy.approval_refusal(
        user=user, request=approval, decided_user_ids=decided_ids
    )
    steps = list(deploy.steps.all())
    verify = next((s for s in steps if s.kind == DeployStep.Kind.VERIFY_ARTIFACT), None)
    # Approving replaces what is live now, so a pending request is measured against it; a
    # closed one keeps what was live when it was asked.
    if pending:
        base, base_ref = environment.current_release, environment.current_image_ref
    else:
        base, base_ref = deploy.previous_release, deploy.previous_image_ref
    commits, going_back = commits_between(base=base, target=deploy.release)
    return DrawerFacts(
        approval=approval,
        deploy=deploy,
        decisions=decisions,
        approvals_so_far=sum(d.verdict == Decision.Verdict.APPROVE for d in decisions),
        gate=gate,
        time_left=max(approval.expires_at - now, timedelta(0)) if pending else None,
        base_label=_label(base, base_ref),
        live_moved=pending
        and (base and base.pk, base_ref) != (deploy.previous_release_id, deploy.previous_image_ref),
        asked_label=_label(deploy.previous_release, deploy.previous_image_ref),
        commits=commits,
        going_back=going_back,
        checks=(verify.data.get("checks", []) if verify else []),
        changes=policy.changes_since_request(request=approval, release=deploy.release)
        if pending
        else [],
        steps=steps,
        freeze_windows=list(environment.freeze_windows.filter(ends_at__gt=now)),
        previews=[] if going_back else _previews(deploy=deploy, commits=commits),
        user_may_decide=pending and not code and approval.expires_at > now,
        user_refusal=refusal,
        user_may_bypass=pending
        and approval.expires_at > now
        and policy.can_bypass(user, environment),
        closed_by=_closer(approval=approval, decisions=decisions),
    )
