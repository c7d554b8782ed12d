"""Audit events for sign-in, sign-out, failed sign-in and Django admin changes; failed and
successful sign-ins also feed the sign-in throttle (approvals.auth).

Admin changes arrive through the admin's own LogEntry rows, saved inside the admin's
transaction, so the audit event commits with the configuration change it describes; their
client address comes from approvals.middleware (the LogEntry signal has no request).
After every migrate or flush, the role groups and the audit chain head exist.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_migrate, post_save
from django.dispatch import receiver

from approvals import auth, policy
from approvals.audit import GENESIS_HASH, Target, record
from approvals.middleware import admin_client_ip
from approvals.models import AuditChainHead
from hotdash.permissions import client_ip

ADMIN_VERBS = {ADDITION: "admin.added", CHANGE: "admin.changed", DELETION: "admin.deleted"}


def _ip(request: Any) -> str | None:
    return client_ip(request) if request is not None else None


@receiver(user_logged_in, dispatch_uid="audit_login")
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record(actor=user, verb="auth.login", target=user, ip=_ip(request))
    auth.success_reset(username=user.get_username())


@receiver(user_logged_out, dispatch_uid="audit_logout")
def audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:  # signing out without a session changes nothing
        record(actor=user, verb="auth.logout", target=user, ip=_ip(request))


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def audit_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs):
    # Only the username: the credentials also hold the (masked) password, never stored.
    username = str(credentials.get("username", ""))[:150]
    auth.failure_count(request, username=username)
    record(
        actor=None,
        verb="auth.login_failed",
        data={"username": username},
        ip=_ip(request),
    )


@receiver(post_save, sender=LogEntry, dispatch_uid="audit_admin_log_entry")
def audit_admin_change(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    content_type = instance.content_type
    model = f"{content_type.app_label}.{content_type.model}" if content_type else ""
    record(
        actor=instance.user,
        verb=ADMIN_VERBS.get(instance.action_flag, "admin.changed"),
        target=Target(
            type=content_type.model if content_type else "",
            id=str(instance.object_id or ""),
            repr=instance.object_repr[:300],
        ),
        data={
            "model": model,
            "object_id": instance.object_id,
            "object": instance.object_repr,
            "change_message": instance.get_change_message(),
        },
        ip=admin_client_ip.get(),
    )


@receiver(post_migrate, dispatch_uid="approvals_roles_and_chain_head")
def ensure_roles_and_chain_head(sender: Any, using: str, **kwargs: Any) -> None:
    """Re-create what migration 0002 seeded once a flush (e.g. between tests) removed it."""
    if sender.label != "approvals":
        return
    for role in policy.ROLE_ORDER:
        Group.objects.using(using).get_or_create(name=role)
    AuditChainHead.objects.using(using).get_or_create(id=1, defaults={"last_hash": GENESIS_HASH})
