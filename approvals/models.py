"""Approval requests, decisions and the append-only, hash-chained audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApprovalRequest(models.Model):
    """What a gated deploy needs, bound to the exact bits that were asked for."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        VOIDED = "voided", "Voided (release changed)"
        SUPERSEDED = "superseded", "Superseded"
        CANCELLED = "cancelled", "Cancelled"

    deploy = models.OneToOneField(
        "deployments.Deploy", on_delete=models.PROTECT, related_name="approval_request"
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    approvals_required = models.PositiveSmallIntegerField(default=1)
    # The binding: any change to these voids the request.
    bound_release_version = models.CharField(max_length=100, blank=True)
    bound_commit_sha = models.CharField(max_length=40, blank=True)
    bound_artifact_sha256 = models.CharField(max_length=64, blank=True)
    bound_image_digest = models.CharField(max_length=80, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "expires_at"], name="approval_state_expiry_idx")]

    def __str__(self) -> str:
        return f"Approval for {self.deploy}"


class Decision(models.Model):
    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="decisions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "user"], name="one_decision_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.verdict} {self.request}"


class AuditEvent(models.Model):
    """Who did what to what, from where: append-only and hash-chained (see approvals.audit)."""

    class ActorType(models.TextChoices):
        USER = "user", "User"
        SYSTEM = "system", "System"
        WORKER = "worker", "Worker"
        GITHUB = "github", "GitHub"
        ANONYMOUS = "anonymous", "Anonymous"

    created_at = models.DateTimeField(default=timezone.now)
    actor_type = models.CharField(max_length=20, choices=ActorType.choices)
    # No FK constraint: an event must outlive (and never be rewritten by) a deleted user.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150)
    verb = models.CharField(max_length=80)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    app_name = models.CharField(max_length=60, blank=True)
    environment_name = models.CharField(max_length=60, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # Lower-cased reason/comment text from ``data`` for free-text search; derived, so it stays
    # out of the hash, and audit verification checks that it still matches ``data``.
    search_text = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["verb", "id"], name="audit_verb_idx"),
            # Verb prefixes ("deploy.") are LIKE 'deploy.%': needs a pattern opclass on PostgreSQL.
            models.Index(
                fields=["verb"], opclasses=["varchar_pattern_ops"], name="audit_verb_prefix_idx"
            ),
            models.Index(fields=["actor_name", "id"], name="audit_actor_idx"),
            models.Index(fields=["actor_name", "verb", "id"], name="audit_actor_verb_idx"),
            models.Index(fields=["app_name", "environment_name", "id"], name="audit_scope_idx"),
            models.Index(fields=["target_type", "target_id", "id"], name="audit_target_id_idx"),
            models.Index(fields=["created_at"], name="audit_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.verb} {self.target_repr}"


class AuditChainHead(models.Model):
    """A single row holding the newest event's hash; locking it serialises chain writers."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_event_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit head at #{self.last_event_id}"


class AuditVerification(models.Model):
    """One run of the audit chain verification (hourly beat task or ``audit_verify``)."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    events_verified = models.BigIntegerField(default=0)
    broken_event_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"audit verification #{self.pk}: {'ok' if self.ok else 'BROKEN'}"
