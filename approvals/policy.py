"""Who may do what: plain functions over users and environments, no database writes.

Roles are Django groups. Each role includes the ones below it:
viewer (read everything, export audit) < deployer (request deploys and rollbacks)
< approver (approve and reject) < admin (locks, overrides, configuration).
"""

from __future__ import annotations

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
    if user.is_superuser:
        highest = len(ROLE_ORDER) - 1
    else:
        names = set(user.groups.values_list("name", flat=True))
        ranks = [index for index, role in enumerate(ROLE_ORDER) if role in names]
        highest = max(ranks, default=-1)
    roles = frozenset(ROLE_ORDER[: highest + 1])
    user._hotdash_roles = roles
    return roles


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


def highest_role(user: Any) -> str:
    roles = roles_of(user)
    return next((role for role in reversed(ROLE_ORDER) if role in roles), "none")


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
