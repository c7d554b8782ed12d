"""Who may do what: plain functions over users and environments, no database writes.

Roles are Django groups. Each role includes the ones below it:
viewer (read everything, export audit) < deployer (request deploys and rollbacks)
< approver (approve and reject) < admin (locks, overrides, configuration).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

VIEWER = "viewer"
DEPLOYER = "deployer"
APPROVER = "approver"
ADMIN = "admin"
ROLE_ORDER = (VIEWER, DEPLOYER, APPROVER, ADMIN)


def roles_of(user: Any) -> frozenset[str]:
    """The user's effective roles, expanded down the hierarchy; cached on the user object."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_hotdash_roles", None)
    if cached is not None:
        return cached
    return remember_roles(user, group_names=set() if user.is_superuser else _group_names(user))


def remember_roles(user: Any, *, group_names: set[str]) -> frozenset[str]:
    """Cache on ``user`` (as roles_of does) the roles it holds as a member of ``group_names``:
    for users read together with their groups, so that asking each one's roles costs no
    query."""
    if user.is_superuser:
        highest = len(ROLE_ORDER) - 1
    else:
        ranks = [index for index, role in enumerate(ROLE_ORDER) if role in group_names]
        highest = max(ranks, default=-1)
    roles = frozenset(ROLE_ORDER[: highest + 1])
    user._hotdash_roles = roles
    return roles


def _group_names(user: Any) -> set[str]:
    """The names of the user's groups, read on every page (the nav, the role checks) with one
    plain statement: building the related manager's query cost ~0.35 ms of CPU."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_group_names_sql(), [user.pk])
        return {name for (name,) in cursor.fetchall()}


@cache
def _group_names_sql() -> str:
    from django.contrib.auth import get_user_model
    from django.db import connection

    groups = get_user_model()._meta.get_field("groups")
    quote = connection.ops.quote_name
    group = groups.related_model._meta
    return (
        f"SELECT g.{quote('name')} FROM {quote(group.db_table)} g"
        f" JOIN {quote(groups.m2m_db_table())} m ON m.{quote(groups.m2m_reverse_name())}"
        f" = g.{quote(group.pk.column)} WHERE m.{quote(groups.m2m_column_name())} = %s"
    )


def can_view(user: Any) -> bool:
    return VIEWER in roles_of(user)


def can_request_deploy(user: Any) -> bool:
    return DEPLOYER in roles_of(user)


def can_approve(user: Any) -> bool:
    return APPROVER in roles_of(user)


def can_administer(user: Any) -> bool:
    return ADMIN in roles_of(user)


def can_export_audit(user: Any) -> bool:
    return can_view(user)


def groups_granting(role: str) -> tuple[str, ...]:
    """The groups whose members hold ``role`` (it and every role above it); superusers hold
    every role besides."""
    return ROLE_ORDER[ROLE_ORDER.index(role) :]


def highest_role(user: Any) -> str:
    roles = roles_of(user)
    return next((role for role in reversed(ROLE_ORDER) if role in roles), "none")


# --- deploy requests -------------------------------------------------------------------------

OVERRIDABLE = frozenset({"lock", "freeze_window", "checks", "promotion"})


def can_override(user: Any) -> bool:
    """Only admins may deploy through a lock, a freeze window, failing checks or a promotion
    rule not met."""
    return can_administer(user)


def can_cancel(user: Any, deploy: Any) -> bool:
    """The requester may withdraw their own deploy; approvers may cancel anyone's."""
    if can_approve(user):
        return True
    return can_request_deploy(user) and deploy.requested_by_id == user.pk


def can_abort(user: Any) -> bool:
    """Stopping a rollout half-way is an approver's call."""
    return can_approve(user)


def can_lock(user: Any) -> bool:
    return can_administer(user)


# --- approvals -------------------------------------------------------------------------------


def approvals_needed(environment: Any, *, fast_path: bool = False) -> int:
    """How many distinct approvals a deploy to ``environment`` needs (0: queue it at once)."""
    return 0 if fast_path else environment.approvals_required


def request_lifetime(environment: Any) -> timedelta:
    """How long an approval request stays open before it ends ``expired``."""
    return timedelta(minutes=environment.approval_ttl_minutes)


def approval_refusal(*, user: Any, request: Any, decided_user_ids: set[int]) -> tuple[str, str]:
    """Why ``user`` may not decide the pending ``request`` as (code, message); ("", "") if they may.

    Approvers only; never the requester (unless the environment allows self-approval); never
    twice.

    "The requester" is the HotDash user who asked for the deploy (``deploy.requested_by``, read
    from the server-side record). When the app sets ``commit_authors_are_requesters``, the
    authors of the release's commits count as requesters too, but only as GitHub tells it:
    an account that signed in with GitHub is matched to a commit by its GitHub user id
    (``author_id`` in the release's changelog; entries recorded before ids were kept carry
    the login only). Names and e-mails are never guessed from, so nobody can lock out an
    approver by naming them as an author; a local account is never a commit author.
    """
    deploy = request.deploy
    if not can_approve(user):
        return "not_approver", "Only approvers may approve or reject deploys."
    if deploy.requested_by_id == user.pk and not deploy.environment.allow_self_approval:
        return "self_approval", "You requested this deploy; someone else has to decide it."
    if deploy.environment.app.commit_authors_are_requesters and wrote_commit_of(
        user, deploy.release
    ):
        return "commit_author", "You wrote a commit of this release; someone else has to decide it."
    if user.pk in decided_user_ids:
        return "already_decided", "You have already decided this request."
    return "", ""


def wrote_commit_of(user: Any, release: Any) -> bool:
    """Whether ``user``'s GitHub identity authored a commit of ``release`` (its changelog)."""
    identity = getattr(user, "github_identity", None)
    if identity is None or release is None:
        return False
    for group in (release.changelog or {}).get("groups", ()):
        for entry in group.get("entries", ()):
            if entry.get("author_id") is not None:
                if entry["author_id"] == identity.github_id:
                    return True
            elif entry.get("author", "").lower() == identity.login.lower():
                return True
    return False


def is_eligible_approver(*, user: Any, request: Any, decided_user_ids: set[int]) -> bool:
    return approval_refusal(user=user, request=request, decided_user_ids=decided_user_ids)[0] == ""


def unsatisfiable_reason(*, still_needed: int, eligible: int, environment: Any) -> str:
    """What to say when fewer people can still approve than approvals are missing ("" when the
    request can be satisfied). The request stays open: an admin may grant the approver role,
    or bypass it."""
    if eligible >= still_needed:
        return ""
    excluded = "" if environment.allow_self_approval else " (requester excluded)"
    if not eligible:
        return f"No eligible approver{excluded}: nobody can approve this request."
    return (
        f"Not enough eligible approvers{excluded}: {still_needed} more approvals needed, "
        f"only {eligible} can still approve."
    )


def can_bypass(user: Any, environment: Any) -> bool:
    """Break-glass: an admin may queue a pending deploy without its approvals, unless the
    environment disallows it. Their own requests included (as GitHub lets admins bypass their
    own pull request's rules): the bypass is never silent, it needs a reason and the admin's
    password, and is audited and notified."""
    return can_administer(user) and environment.allow_approval_bypass


def changes_since_request(*, request: Any, release: Any) -> list[str]:
    """What differs between the bits an approval request is bound to and ``release`` now.

    Any entry voids the request: approvals are for exact bits, not for a version name.
    """
    if release is None:
        return []
    changes = []
    if release.version != request.bound_release_version:
        changes.append(f"release {request.bound_release_version} → {release.version}")
    if release.commit_sha != request.bound_commit_sha:
        changes.append("commit changed")
    if release.artifact_sha256 != request.bound_artifact_sha256:
        changes.append(
            f"artifact checksum {request.bound_artifact_sha256[:12]} → "
            f"{release.artifact_sha256[:12] or 'none'}"
        )
    if release.image_digest != request.bound_image_digest:
        changes.append(
            f"image digest {request.bound_image_digest[:19]} → "
            f"{release.image_digest[:19] or 'none'}"
        )
    if not release.is_deployable:
        changes.append("release is no longer deployable (invalid, marked bad or deleted)")
    return changes


def rollback_fast_path_allowed(
    *, environment: Any, target_release: Any, live_healthy_versions: Any, user: Any
) -> bool:
    """A rollback skips approvals when the environment allows the fast path, the target was
    live and healthy there before, and an approver asks (their own confirmation suffices)."""
    return (
        environment.rollback_fast_path
        and target_release.version in live_healthy_versions
        and can_approve(user)
    )
