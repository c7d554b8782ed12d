"""Apps, environments, releases, builds, deploys, previews: tables, states and DB constraints.

Domain rules live in services; these models keep invariants the database can enforce.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from hotdash.links import github_url

# The longest rotation period a secret may have, per app or per secret.
MAX_ROTATION_DAYS = 180


class App(models.Model):
    """A deployable product, built by CI from one GitHub repository."""

    name = models.SlugField(max_length=60, unique=True)
    github_owner = models.CharField(max_length=100)
    github_repo = models.CharField(max_length=100)
    fly_org = models.CharField(max_length=100)
    version_file_path = models.CharField(max_length=200, default="package.json")
    required_checks = models.JSONField(default=list, blank=True)
    rollback_targets_kept = models.PositiveSmallIntegerField(default=3)
    preview_enabled = models.BooleanField(default=True)
    preview_app_template = models.CharField(max_length=100, default="{app}-pr-{number}")
    preview_max_age_days = models.PositiveSmallIntegerField(default=30)
    preview_opt_in_label = models.CharField(max_length=50, default="preview")
    notification_webhook_url = models.URLField(blank=True)
    notification_webhook_secret = models.CharField(max_length=200, blank=True)
    # Compliance policy (the sweep checks the default branch's protection and secret ages).
    compliance_min_approving_reviews = models.PositiveSmallIntegerField(
        default=1, help_text="Branch protection must require at least this many approvals."
    )
    secret_rotation_days = models.PositiveSmallIntegerField(
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_ROTATION_DAYS)],
        help_text="How old a secret may get before the compliance sweep reports it overdue "
        "(a secret's own period overrides it).",
    )
    commit_authors_are_requesters = models.BooleanField(
        default=False,
        help_text="Four-eyes with GitHub identities: someone who signed in with GitHub and "
        "wrote a commit of the release counts as a requester and cannot approve its deploy.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def github_full_name(self) -> str:
        return f"{self.github_owner}/{self.github_repo}"


PRODUCTION_FLOOR_MESSAGE = "A production environment needs at least 1 approval."
CONCURRENCY_MESSAGE = "The soft concurrency limit cannot be above the hard limit."
MIN_RUNNING_MESSAGE = "Minimum machines running cannot be above the machine count."
FLY_CPU_COUNTS = (1, 2, 4, 8, 16)


class Environment(models.Model):
    """Where a release runs: production, staging, or the preview of one pull request."""

    class Kind(models.TextChoices):
        PRODUCTION = "production", "Production"
        STAGING = "staging", "Staging"
        PREVIEW = "preview", "Preview"

    class RolloutStrategy(models.TextChoices):
        ROLLING = "rolling", "Rolling"

    class CpuKind(models.TextChoices):
        SHARED = "shared", "Shared"
        PERFORMANCE = "performance", "Performance"

    class AutoStop(models.TextChoices):
        OFF = "off", "Off"
        STOP = "stop", "Stop"
        SUSPEND = "suspend", "Suspend"

    class ConcurrencyType(models.TextChoices):
        CONNECTIONS = "connections", "Connections"
        REQUESTS = "requests", "Requests"

    class KillSignal(models.TextChoices):
        SIGINT = "SIGINT", "SIGINT"
        SIGTERM = "SIGTERM", "SIGTERM"
        SIGQUIT = "SIGQUIT", "SIGQUIT"
        SIGUSR1 = "SIGUSR1", "SIGUSR1"
        SIGUSR2 = "SIGUSR2", "SIGUSR2"
        SIGKILL = "SIGKILL", "SIGKILL"
        SIGSTOP = "SIGSTOP", "SIGSTOP"

    class RestartPolicy(models.TextChoices):
        ALWAYS = "always", "Always"
        ON_FAILURE = "on-failure", "On failure"
        NO = "no", "Never"

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        HEALTHY = "healthy", "Healthy"
        DEGRADED = "degraded", "Degraded"
        FAILING = "failing", "Failing"

    class Uptime(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        UP = "up", "Up"
        DOWN = "down", "Down"

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="environments")
    name = models.SlugField(max_length=60)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    fly_app_name = models.CharField(max_length=63, unique=True)
    url = models.URLField(blank=True)
    # The machine configuration the environment declares (what every machine must look like);
    # defaults are Fly's documented ones. deployments.engine.desired turns it into Fly configs.
    region = models.CharField(max_length=8, default="ord")
    machine_count = models.PositiveSmallIntegerField(default=1)
    min_machines_running = models.PositiveSmallIntegerField(default=0)
    machine_cpu_kind = models.CharField(max_length=20, choices=CpuKind.choices, default="shared")
    machine_cpus = models.PositiveSmallIntegerField(default=1)
    machine_memory_mb = models.PositiveIntegerField(default=256)
    auto_stop_machines = models.CharField(
        max_length=10, choices=AutoStop.choices, default=AutoStop.OFF
    )
    auto_start_machines = models.BooleanField(default=True)
    process_group = models.SlugField(max_length=60, default="app")
    internal_port = models.PositiveIntegerField(default=8080)
    concurrency_type = models.CharField(
        max_length=12, choices=ConcurrencyType.choices, default=ConcurrencyType.CONNECTIONS
    )
    concurrency_soft_limit = models.PositiveIntegerField(default=20)
    concurrency_hard_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: no hard limit."
    )
    kill_signal = models.CharField(max_length=10, choices=KillSignal.choices, default="SIGINT")
    kill_timeout_seconds = models.PositiveSmallIntegerField(default=5)
    restart_policy = models.CharField(
        max_length=12, choices=RestartPolicy.choices, default=RestartPolicy.ON_FAILURE
    )
    restart_max_retries = models.PositiveSmallIntegerField(default=10)
    rollout_strategy = models.CharField(
        max_length=20, choices=RolloutStrategy.choices, default=RolloutStrategy.ROLLING
    )
    max_unavailable_percent = models.PositiveSmallIntegerField(default=30)
    health_http_path = models.CharField(max_length=200, default="/health")
    health_http_interval_seconds = models.PositiveIntegerField(default=30)
    health_http_timeout_seconds = models.PositiveIntegerField(default=5)
    health_http_grace_seconds = models.PositiveIntegerField(default=30)
    health_tcp_interval_seconds = models.PositiveIntegerField(default=15)
    health_tcp_timeout_seconds = models.PositiveIntegerField(default=2)
    health_tcp_grace_seconds = models.PositiveIntegerField(default=30)
    health_attempts = models.PositiveSmallIntegerField(default=5)
    verification_window_seconds = models.PositiveIntegerField(default=60)
    rollout_deadline_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A deploy still running this many seconds after it started is aborted "
        "(deadline exceeded) and rolled back; empty: no deadline.",
    )
    # Gated by default; production can never go below 1 (clean() and a check constraint).
    approvals_required = models.PositiveSmallIntegerField(default=1)
    allow_self_approval = models.BooleanField(default=False)
    allow_approval_bypass = models.BooleanField(
        default=True,
        help_text="Admins may bypass a pending approval (break-glass) with a reason and their "
        "password; audited and notified.",
    )
    approval_ttl_minutes = models.PositiveIntegerField(default=60)
    # The promotion pipeline: an app's environments with a position run in that order (staging
    # 1, production 2). An environment with a promotion rule takes only a release whose image
    # digest succeeded on the previous environment and stayed healthy there this many minutes.
    promotion_position = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Place in the app's promotion order (1 first); empty: not in the order.",
    )
    promotion_min_healthy_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Promotion rule: minutes a release must have run healthy on the previous "
        "environment of the order before it may come here; empty: no rule.",
    )
    rollback_fast_path = models.BooleanField(
        default=True,
        help_text="A rollback to a release that was live and healthy here needs no approval.",
    )
    # The lock: who holds it, why, since when. Empty locked_at means unlocked.
    locked_at = models.DateTimeField(null=True, blank=True)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lock_reason = models.TextField(blank=True)
    # What is live, recorded when a deploy succeeds (the fact, not a guess).
    current_release = models.ForeignKey(
        "Release", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    current_image_ref = models.CharField(max_length=300, blank=True)
    health = models.CharField(max_length=20, choices=Health.choices, default=Health.UNKNOWN)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    # How the live machines differ from the declared config, as the last drift check found it:
    # {machine id: [{"field", "declared", "live"}, ...]} (empty: none differs). Never checked
    # while drift_checked_at is empty; drift_error says why the last check could not read Fly.
    drift = models.JSONField(default=dict, blank=True)
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    drift_changed_at = models.DateTimeField(null=True, blank=True)
    drift_error = models.TextField(blank=True)
    # Whether the public health URL answers, as the uptime probes judge it (down after a run of
    # failures, up after a run of successes), and since when it does so.
    uptime = models.CharField(max_length=10, choices=Uptime.choices, default=Uptime.UNKNOWN)
    uptime_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["app__name", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["app", "name"], name="environment_unique_name_per_app"),
            models.CheckConstraint(
                condition=Q(max_unavailable_percent__gte=1, max_unavailable_percent__lte=100),
                name="environment_max_unavailable_range",
            ),
            models.CheckConstraint(
                condition=~Q(kind="production") | Q(approvals_required__gte=1),
                name="environment_production_needs_approval",
                violation_error_message=PRODUCTION_FLOOR_MESSAGE,
            ),
            models.CheckConstraint(
                condition=Q(concurrency_hard_limit__isnull=True)
                | Q(concurrency_hard_limit__gte=models.F("concurrency_soft_limit")),
                name="environment_concurrency_soft_within_hard",
                violation_error_message=CONCURRENCY_MESSAGE,
            ),
            models.CheckConstraint(
                condition=Q(min_machines_running__lte=models.F("machine_count")),
                name="environment_min_running_within_count",
                violation_error_message=MIN_RUNNING_MESSAGE,
            ),
            models.CheckConstraint(
                condition=Q(kill_timeout_seconds__gte=1, kill_timeout_seconds__lte=300),
                name="environment_kill_timeout_range",
            ),
            models.CheckConstraint(
                condition=Q(internal_port__gte=1, internal_port__lte=65535),
                name="environment_internal_port_range",
            ),
            models.CheckConstraint(
                condition=Q(machine_cpus__gte=1, machine_memory_mb__gte=256),
                name="environment_guest_minimum",
            ),
            models.CheckConstraint(
                condition=Q(
                    health_http_interval_seconds__gte=1,
                    health_http_timeout_seconds__gte=1,
                    health_tcp_interval_seconds__gte=1,
                    health_tcp_timeout_seconds__gte=1,
                ),
                name="environment_check_timings_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.app.name}/{self.name}"

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.kind == self.Kind.PRODUCTION and (self.approvals_required or 0) < 1:
            errors["approvals_required"] = PRODUCTION_FLOOR_MESSAGE
        hard, soft = self.concurrency_hard_limit, self.concurrency_soft_limit
        if hard is not None and soft is not None and soft > hard:
            errors["concurrency_soft_limit"] = CONCURRENCY_MESSAGE
        if (self.min_machines_running or 0) > (self.machine_count or 0):
            errors["min_machines_running"] = MIN_RUNNING_MESSAGE
        if self.machine_cpus not in FLY_CPU_COUNTS:
            errors["machine_cpus"] = f"Fly offers {', '.join(map(str, FLY_CPU_COUNTS))} CPUs."
        if (self.machine_memory_mb or 0) < 256 or (self.machine_memory_mb or 0) % 256:
            errors["machine_memory_mb"] = "Memory is a multiple of 256 MB (at least 256)."
        if not 1 <= (self.kill_timeout_seconds or 0) <= 300:
            errors["kill_timeout_seconds"] = "Fly allows a kill timeout of 1 to 300 seconds."
        if not 1 <= (self.internal_port or 0) <= 65535:
            errors["internal_port"] = "A port is between 1 and 65535."
        for check in ("http", "tcp"):
            for timing in ("interval", "timeout"):
                name = f"health_{check}_{timing}_seconds"
                if (getattr(self, name) or 0) < 1:
                    errors[name] = "At least one second."
        if errors:
            raise ValidationError(errors)

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None

    @property
    def drifted(self) -> bool:
        """The last drift check found a machine that differs from the declared config."""
        return bool(self.drift)


class FreezeWindow(models.Model):
    """A period in which deploys to an environment are refused unless an admin overrides."""

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="freeze_windows"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="freeze_window_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.environment}: {self.reason}"


class Release(models.Model):
    """A tagged, checksummed, already-built version of an App."""

    class Validation(models.TextChoices):
        PENDING = "pending", "Pending validation"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"
        REJECTED = "rejected", "Rejected (not SemVer)"

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="releases")
    version = models.CharField(max_length=100)  # "1.2.0"; the raw tag for rejected tags
    tag = models.CharField(max_length=120)
    is_prerelease = models.BooleanField(default=False)
    commit_sha = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=200, blank=True)
    changelog = models.JSONField(default=dict, blank=True)
    artifact_name = models.CharField(max_length=200, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    artifact_digest = models.CharField(max_length=80, blank=True)
    image_ref = models.CharField(max_length=300, blank=True)
    image_digest = models.CharField(max_length=80, blank=True)
    validation = models.CharField(
        max_length=20, choices=Validation.choices, default=Validation.PENDING
    )
    validation_results = models.JSONField(default=list, blank=True)
    # As GitHub reported them at the last sync: [{name, size, digest}] and [{name, status, ...}].
    assets = models.JSONField(default=list, blank=True)
    ci_checks = models.JSONField(default=list, blank=True)
    github_release_id = models.BigIntegerField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    deleted_on_github_at = models.DateTimeField(null=True, blank=True)
    # The sticky mark a rollback leaves on the release it rolled away from.
    bad_marked_at = models.DateTimeField(null=True, blank=True)
    bad_marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    bad_reason = models.TextField(blank=True)

    class Meta:
        # SemVer precedence cannot be expressed as a portable SQL order; see deployments.semver.
        ordering = ["-published_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "version"], name="release_unique_version_per_app"
            )
        ]

    def __str__(self) -> str:
        return f"{self.app.name} {self.tag}"

    @property
    def is_bad(self) -> bool:
        return self.bad_marked_at is not None

    @property
    def is_deployable(self) -> bool:
        return (
            self.validation == self.Validation.VALID
            and not self.is_bad
            and self.deleted_on_github_at is None
        )


# The releases whose is_deployable is true, as a query filter (the two must agree).
RELEASE_DEPLOYABLE = models.Q(
    validation=Release.Validation.VALID, bad_marked_at=None, deleted_on_github_at=None
)


class Build(models.Model):
    """An image CI built for one commit (previews deploy builds; releases carry their own)."""

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="builds")
    commit_sha = models.CharField(max_length=40)
    image_ref = models.CharField(max_length=300)
    image_digest = models.CharField(max_length=80)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["app", "commit_sha"], name="build_unique_commit_per_app"
            )
        ]

    def __str__(self) -> str:
        return f"{self.app.name}@{self.commit_sha[:7]}"


# The gates an admin may override (approvals.policy.OVERRIDABLE), as a person reads them.
OVERRIDE_LABELS = {
    "lock": "the environment lock",
    "freeze_window": "the freeze window",
    "checks": "failing CI checks",
    "promotion": "the promotion rule",
}


class Deploy(models.Model):
    """One attempt to put a Release (or a preview Build) on an Environment."""

    class Kind(models.TextChoices):
        DEPLOY = "deploy", "Deploy"
        ROLLBACK = "rollback", "Rollback"
        AUTO_ROLLBACK = "auto_rollback", "Automatic rollback"
        PREVIEW = "preview", "Preview"
        # The declared machine config rolled out onto the machines; their images stay.
        RECONCILE = "reconcile", "Reconcile config"

    class State(models.TextChoices):
        REQUESTED = "requested", "Requested"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        VERIFYING = "verifying", "Verifying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"
        SUPERSEDED = "superseded", "Superseded"

    ACTIVE_STATES = (State.RUNNING, State.VERIFYING)
    TERMINAL_STATES = (
        State.SUCCEEDED,
        State.FAILED,
        State.REJECTED,
        State.EXPIRED,
        State.CANCELLED,
        State.SUPERSEDED,
    )

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deploys")
    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.PROTECT, related_name="deploys"
    )
    build = models.ForeignKey(
        Build, null=True, blank=True, on_delete=models.PROTECT, related_name="deploys"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DEPLOY)
    state = models.CharField(max_length=20, choices=State.choices, default=State.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # "system", "github" or "worker" when no person asked (auto-rollbacks, previews).
    requested_by_system = models.CharField(max_length=20, blank=True)
    reason = models.TextField()
    # What was live when this deploy was requested, and what it replaces on the machines.
    previous_release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    previous_image_ref = models.CharField(max_length=300, blank=True)
    # The exact bits that were approved; the worker re-checks them before touching Fly.
    image_ref = models.CharField(max_length=300, blank=True)
    image_digest = models.CharField(max_length=80, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    commit_sha = models.CharField(max_length=40, blank=True)
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rollbacks"
    )
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The deploy on the previous environment of the promotion order whose success, healthy
    # since, counted for this release when it was requested (the rehearsal evidence).
    rehearsal = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Admin overrides of gates (OVERRIDE_LABELS), with the mandatory reason.
    overrides = models.JSONField(default=list, blank=True)
    override_reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    fast_path = models.BooleanField(default=False)
    # An approver's emergency rollback: every machine in one batch, health waited for only the
    # grace period, no verification window. Shown on the overview until acknowledged.
    emergency = models.BooleanField(default=False)
    emergency_acknowledged_at = models.DateTimeField(null=True, blank=True)
    emergency_acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Worker bookkeeping: attempts are counted here, not by the broker.
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    abort_requested_at = models.DateTimeField(null=True, blank=True)
    github_deployment_id = models.BigIntegerField(null=True, blank=True)
    health_verified = models.BooleanField(null=True, blank=True)
    health_summary = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment"],
                condition=Q(state__in=["running", "verifying"]),
                name="one_active_deploy_per_environment",
            ),
            models.CheckConstraint(
                condition=Q(requested_by__isnull=False) | ~Q(requested_by_system=""),
                name="deploy_has_requester",
            ),
        ]
        # Also deploy_env_last_ran_idx, on PostgreSQL only (migration 0012).
        indexes = [
            models.Index(fields=["environment", "state"], name="deploy_env_state_idx"),
            # The few deploys not finished yet among every deploy ever made (the Ops backlog).
            models.Index(
                fields=["state"],
                condition=Q(
                    state__in=["requested", "awaiting_approval", "queued", "running", "verifying"]
                ),
                name="deploy_open_state_idx",
            ),
            # The overview's banner: a few rows among every deploy ever made.
            models.Index(
                fields=["-created_at", "-id"],
                condition=Q(emergency=True, emergency_acknowledged_at__isnull=True),
                name="deploy_emergency_unacked_idx",
            ),
            # The newest deploys of one kind, per environment or across them: a preview's
            # latest deploy, the Rollbacks page.
            models.Index(
                fields=["kind", "environment", "-created_at", "-id"], name="deploy_kind_env_recent"
            ),
            # An environment's newest deploys of every kind (its page): without it PostgreSQL
            # walks every deploy ever made by date until it has found ten of the environment's.
            models.Index(fields=["environment", "-created_at", "-id"], name="deploy_env_recent"),
        ]

    def __str__(self) -> str:
        return f"Deploy #{self.pk}"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL_STATES

    @property
    def requester_name(self) -> str:
        return self.requested_by.get_username() if self.requested_by else self.requested_by_system

    @property
    def override_labels(self) -> list[str]:
        return [OVERRIDE_LABELS.get(name, name) for name in self.overrides]

    @property
    def rollback_hold(self) -> RollbackHold | None:
        """What a person's rollback does to its environment as it starts, worded for its state
        ("Will lock production and mark v1.2.0 bad when approved."); None for other kinds."""
        if self.kind != self.Kind.ROLLBACK:
            return None
        return RollbackHold.of(
            environment=self.environment.name,
            marks_bad=self.previous_release.tag if self.previous_release else "",
            state=self.state,
            started=self.started_at is not None,
        )


@dataclass(frozen=True)
class RollbackHold:
    """A person's rollback locks ``environment`` and marks ``marks_bad`` (the release it rolls
    away from, if one was live) bad as it starts, never before; ``applied`` once it started."""

    environment: str
    marks_bad: str
    applied: bool
    summary: str

    @classmethod
    def of(cls, *, environment: str, marks_bad: str, state: str, started: bool) -> RollbackHold:
        """Worded for the rollback's ``state`` ("Will lock production and mark v1.2.0 bad when
        approved.")."""
        if started:
            (lock, mark), when = ("Locked", "and marked"), " when it started."
        elif state in Deploy.TERMINAL_STATES:
            (lock, mark), when = ("Did not lock", "or mark"), ": it never started."
        else:
            (lock, mark) = ("Will lock", "and mark")
            when = " when it starts." if state == Deploy.State.QUEUED else " when approved."
        bad = f" {mark} {marks_bad} bad" if marks_bad else ""
        return cls(
            environment=environment,
            marks_bad=marks_bad,
            applied=started,
            summary=f"{lock} {environment}{bad}{when}",
        )


class DeployStep(models.Model):
    """One step of a deploy's plan, visible before approval and updated as the worker runs it."""

    class Kind(models.TextChoices):
        VERIFY_ARTIFACT = "verify_artifact", "Verify artifact"
        GITHUB_DEPLOYMENT = "github_deployment", "Create GitHub deployment"
        UPDATE_BATCH = "update_batch", "Update machines"
        VERIFY = "verify", "Verification window"
        GITHUB_STATUS = "github_status", "Report to GitHub"
        ROLLBACK_MACHINES = "rollback_machines", "Roll machines back"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    deploy = models.ForeignKey(Deploy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=30, choices=Kind.choices)
    title = models.CharField(max_length=200)
    data = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    detail = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["deploy", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["deploy", "position"], name="deploy_step_unique_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.deploy} step {self.position}: {self.title}"


class DeployLog(models.Model):
    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    deploy = models.ForeignKey(Deploy, on_delete=models.CASCADE, related_name="logs")
    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["deploy", "id"]

    def __str__(self) -> str:
        return self.message[:80]


class Preview(models.Model):
    """The lifecycle of one pull request's preview environment."""

    class State(models.TextChoices):
        """The one vocabulary for a preview's state: every page, the PR comment and the docs
        (docs/sandbox.md, "Preview states") use these labels and descriptions."""

        # A fork's commit is never deployed until a maintainer approves that exact commit.
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        CREATING = "creating", "Creating"
        RUNNING = "running", "Live"
        SLEEPING = "sleeping", "Asleep"
        FAILED = "failed", "Failed"
        DESTROYED = "destroyed", "Destroyed"

        @property
        def description(self) -> str:
            return PREVIEW_STATE_DESCRIPTIONS[self]

    app = models.ForeignKey(App, on_delete=models.PROTECT, related_name="previews")
    environment = models.OneToOneField(
        Environment, null=True, blank=True, on_delete=models.PROTECT, related_name="preview"
    )
    pr_number = models.PositiveIntegerField()
    pr_title = models.CharField(max_length=300, blank=True)
    pr_author = models.CharField(max_length=100, blank=True)
    branch = models.CharField(max_length=255, blank=True)
    head_sha = models.CharField(max_length=40, blank=True)
    is_fork = models.BooleanField(default=False)
    is_draft = models.BooleanField(default=False)
    url = models.URLField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.CREATING)
    comment_id = models.BigIntegerField(null=True, blank=True)
    # The text of HotDash's comment on the PR as last posted (empty until posted).
    comment_body = models.TextField(blank=True)
    # Names of the staging secrets copied onto the preview app; values are never stored.
    secret_names = models.JSONField(default=list, blank=True)
    # The fork commit a maintainer last approved for deployment (cleared when revived).
    approved_sha = models.CharField(max_length=40, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["-updated_at", "-id"], name="preview_recent")]
        constraints = [
            models.UniqueConstraint(fields=["app", "pr_number"], name="preview_unique_pr_per_app")
        ]

    def __str__(self) -> str:
        return f"{self.app.name} PR #{self.pr_number}"

    @property
    def state_description(self) -> str:
        return Preview.State(self.state).description

    @property
    def pr_url(self) -> str:
        """The pull request on GitHub (hotdash.links decides where that is)."""
        repository = f"{self.app.github_owner}/{self.app.github_repo}"
        return github_url(repository, f"/pull/{self.pr_number}")

    # Which actions make sense now (pages offer only these; the services refuse the rest).
    # ``head_build_exists`` is annotated by deployments.selectors.previews.

    @property
    def wake_offered(self) -> bool:
        return self.state == Preview.State.SLEEPING

    @property
    def redeploy_offered(self) -> bool:
        held_or_gone = (Preview.State.DESTROYED, Preview.State.AWAITING_APPROVAL)
        return self.state not in held_or_gone and bool(getattr(self, "head_build_exists", False))

    @property
    def destroy_offered(self) -> bool:
        return self.state != Preview.State.DESTROYED


PREVIEW_STATE_DESCRIPTIONS = {
    Preview.State.AWAITING_APPROVAL: (
        "From a fork: nothing is deployed until a maintainer approves its head commit."
    ),
    Preview.State.CREATING: (
        "Being set up: waiting for the CI build of the head commit, or deploying it."
    ),
    Preview.State.RUNNING: "Deployed and awake: the URL answers at once.",
    Preview.State.SLEEPING: (
        "Deployed, machines asleep while idle: opening the URL or Wake starts them."
    ),
    Preview.State.FAILED: "The last deploy failed: push a fix or Redeploy.",
    Preview.State.DESTROYED: (
        "The Fly app is deleted (PR closed, or destroyed by hand); reopening the PR or "
        "pushing to it recreates it."
    ),
}


class WebhookDelivery(models.Model):
    """Every GitHub delivery we accepted, keyed by X-GitHub-Delivery (replays are no-ops)."""

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    delivery_id = models.CharField(max_length=100)  # unique: see Meta.constraints
    event = models.CharField(max_length=50)
    action = models.CharField(max_length=50, blank=True)
    payload = models.JSONField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.RECEIVED)
    detail = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # What the worker's ``webhook.received`` audit event says about the request: the sender's
    # address and the payload's strings stored escaped. The endpoint takes no audit-chain lock.
    ip = models.GenericIPAddressField(null=True, blank=True)
    escaped = models.JSONField(default=list, blank=True)
    received_audited = models.BooleanField(default=False)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            # A constraint rather than unique=True, which on PostgreSQL adds a second index
            # for LIKE queries that nothing makes: a quarter of the INSERT's cost in the
            # database, at up to 1,000 deliveries a second.
            models.UniqueConstraint(fields=["delivery_id"], name="webhookdelivery_delivery_id_once")
        ]
        indexes = [
            # The drain's and the stuck-delivery sweep's look for work: the few deliveries not
            # processed yet, not a scan of every delivery ever kept (rows stay for replays).
            models.Index(
                fields=["id"],
                name="webhookdelivery_received",
                condition=models.Q(state="received"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event}.{self.action} {self.delivery_id}"


class ApiToken(models.Model):
    """A personal API token; only its SHA-256 is stored, the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class GitHubTeamRole(models.Model):
    """Members of a GitHub organisation team hold a HotDash role (read at sign-in, refreshed by
    beat and on membership/team webhooks). Mappings hang off an app; HotDash roles are global,
    so a person holds the highest role any app's mapping gives them."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        DEPLOYER = "deployer", "Deployer"
        APPROVER = "approver", "Approver"
        ADMIN = "admin", "Admin"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="github_team_roles")
    org = models.CharField(max_length=100, help_text="The organisation's login, e.g. acme.")
    team_slug = models.CharField(max_length=100, help_text="The team's slug, e.g. platform.")
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        ordering = ["app__name", "org", "team_slug"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "org", "team_slug"], name="one_role_per_app_team"
            )
        ]

    def __str__(self) -> str:
        return f"{self.team} → {self.role}"

    @property
    def team(self) -> str:
        return f"{self.org}/{self.team_slug}"


class GitHubIdentity(models.Model):
    """A HotDash account that signs in with GitHub, matched by GitHub user id (logins can be
    renamed). Its role groups are managed from its teams; ``teams`` are the mapped teams it was
    last seen in (lower-case ``org/slug``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="github_identity"
    )
    github_id = models.BigIntegerField(unique=True)
    login = models.CharField(max_length=100)
    teams = models.JSONField(default=list, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.login} ({self.github_id})"


class Notification(models.Model):
    """An outgoing notification, retried and logged: an HMAC-signed POST to an app's webhook,
    or an e-mail to one user (sent once per ``dedup_key`` and recipient)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "E-mail"

    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEBHOOK)
    # None: an e-mail about HotDash itself (an operational alert), about no app.
    app = models.ForeignKey(
        App, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    # What the e-mail is about ("deploy:7:approval.approved"): one e-mail per key and recipient.
    dedup_key = models.CharField(max_length=200, blank=True)
    deploy = models.ForeignKey(
        Deploy, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.CharField(max_length=50)
    payload = models.JSONField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # While pending: when the next attempt is due (its message is sent for then), or when the
    # running attempt must have reported back. Long past it, the message or worker was lost.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedup_key"],
                condition=~Q(dedup_key=""),
                name="notification_once_per_recipient",
            ),
            models.CheckConstraint(
                condition=Q(channel="webhook", app__isnull=False, recipient__isnull=True)
                | Q(channel="email", recipient__isnull=False),
                name="notification_channel_target",
            ),
        ]

    def __str__(self) -> str:
        if self.channel == self.Channel.EMAIL:
            return f"{self.event} → e-mail to user {self.recipient_id}"
        return f"{self.event} → {self.app.name}"


class EmailPreference(models.Model):
    """The notification events one user does not want e-mailed (every event is e-mailed by
    default: a missing row means all)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_preference"
    )
    muted_events = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"e-mail choices of user {self.user_id}"


class TimeZonePreference(models.Model):
    """The time zone one user reads times in (UTC for everyone without a row)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="time_zone_preference"
    )
    time_zone = models.CharField(max_length=64)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"time zone of user {self.user_id}: {self.time_zone}"


class UpstreamRequestCount(models.Model):
    """How many requests every process sent to Fly or GitHub with one method and outcome
    (``status`` is the HTTP status, or ``error`` when no answer came), and their total time;
    counted in memory and added here every few seconds (services/upstream_metrics.py)."""

    provider = models.CharField(max_length=20)
    method = models.CharField(max_length=10)
    status = models.CharField(max_length=10)
    count = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "method", "status"], name="upstream_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.method} {self.status}: {self.count}"


class UpstreamDurationBucket(models.Model):
    """How many requests to a provider took at most the bucket's bound (and more than the
    previous one): hotdash.integrations.upstream_tally.DURATION_BUCKETS, one past them for
    slower ones."""

    provider = models.CharField(max_length=20)
    bucket = models.PositiveSmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "bucket"], name="upstream_bucket_unique")
        ]

    def __str__(self) -> str:
        return f"{self.provider} bucket {self.bucket}: {self.count}"


class Alert(models.Model):
    """One operational condition HotDash watches (workers, audit chain, webhook deliveries):
    whether it holds now and since when. Entering and clearing are each announced once."""

    condition = models.CharField(max_length=40, unique=True)
    active = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.condition} ({'active' if self.active else 'clear'})"


class Probe(models.Model):
    """One uptime probe of an environment's public health URL (a bounded history: old rows
    are rolled up into ProbeHour by beat)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="probes")
    checked_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # none: no answer
    latency_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["environment", "-checked_at"], name="probe_env_recent")]

    def __str__(self) -> str:
        return f"{self.environment_id} {'ok' if self.ok else 'fail'} {self.checked_at:%H:%M:%S}"


class ProbeHour(models.Model):
    """One hour of an environment's probes, rolled up once they are
    settings.UPTIME_PROBE_RAW_HOURS old (deployments.services.uptime): what the uptime
    percentages and the latency sparkline need, so they read the same as from the rows it
    replaces. Dropped after settings.UPTIME_PROBE_HOURLY_RETENTION_DAYS."""

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="probe_hours"
    )
    hour = models.DateTimeField()  # the hour's start, in UTC
    probes = models.PositiveIntegerField()
    successes = models.PositiveIntegerField()
    latency_ms_total = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["environment", "hour"], name="probe_hour_unique")
        ]

    def __str__(self) -> str:
        return f"{self.environment_id} {self.hour:%Y-%m-%d %H}h {self.successes}/{self.probes}"


class GitHubReport(models.Model):
    """One GitHub deployment status a deploy reports, kept here until it is delivered: the
    outbox that takes GitHub writes off the rollout (services/github_reports.py). The first
    report of a deploy also creates its GitHub deployment. Delivered in id order per deploy,
    paced per token by GitHubPacer."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    deploy = models.ForeignKey(Deploy, on_delete=models.CASCADE, related_name="github_reports")
    pace_key = models.CharField(max_length=200)  # whose token sends it
    ref = models.CharField(max_length=200)  # what the GitHub deployment is created for
    state = models.CharField(max_length=20)  # in_progress, success, failure, inactive
    description = models.CharField(max_length=140)
    environment_url = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome, default=Outcome.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deploy", "state"], name="github_report_once_per_state")
        ]
        indexes = [models.Index(fields=["pace_key", "outcome", "id"], name="github_report_queue")]

    def __str__(self) -> str:
        return f"deploy #{self.deploy_id} {self.state} ({self.outcome})"


class GitHubPacer(models.Model):
    """The delivery chain of one GitHub token's reports: the earliest moment the next write may
    start, and the token of the one delivery message on its way (empty: none)."""

    key = models.CharField(max_length=200, unique=True)
    next_at = models.DateTimeField(null=True, blank=True)
    wake_token = models.CharField(max_length=32, blank=True)
    wake_due_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker proved it executes tasks (shown on the Ops page)."""

    hostname = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname


class BackupRun(models.Model):
    """One run of the backup job: a backup of HotDash's own database and its restore drill."""

    class Result(models.TextChoices):
        PASSED = "passed", "Verified"
        FAILED = "failed", "Failed"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    path = models.CharField(max_length=500)
    size_bytes = models.BigIntegerField(default=0)
    result = models.CharField(max_length=10, choices=Result.choices)
    # Vendor, the drill's checks ({name, ok, detail}), an error, seconds per phase, pruned dirs.
    details = models.JSONField(default=dict, blank=True)
    # Who pressed "Run backup now"; empty for the weekly schedule.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["result", "started_at"], name="backup_result_started_idx")]

    def __str__(self) -> str:
        return f"backup {self.started_at:%Y-%m-%d %H:%M} {self.result}"

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def problems(self) -> list[str]:
        """Why the run failed: its error and each failed check (none when it passed)."""
        error = [self.details["error"]] if self.details.get("error") else []
        checks = self.details.get("checks", [])
        return error + [f"{c['name']}: {c['detail']}" for c in checks if not c["ok"]]


class SecretRotation(models.Model):
    """HotDash's record of one secret of an app (never its value): its own rotation period, and
    the last rotation someone recorded as done outside HotDash."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="secret_rotations")
    # "github-actions", or "fly:<environment name>".
    location = models.CharField(max_length=80)
    name = models.CharField(max_length=200)
    rotation_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_ROTATION_DAYS)],
        help_text="Overrides the app's rotation period for this secret (at most 180 days).",
    )
    rotated_at = models.DateTimeField(null=True, blank=True)
    rotated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["app", "location", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "location", "name"], name="secret_rotation_unique_secret"
            ),
            models.CheckConstraint(
                condition=Q(rotation_days__isnull=True)
                | Q(rotation_days__gte=1, rotation_days__lte=MAX_ROTATION_DAYS),
                name="secret_rotation_days_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.app.name} {self.location} {self.name}"


class ComplianceRun(models.Model):
    """One compliance sweep of one app: every check's verdict, or why the sweep could not run."""

    class Result(models.TextChoices):
        PASSED = "passed", "PASS"
        WARNED = "warned", "WARN"
        FAILED = "failed", "FAIL"
        ERROR = "error", "Could not run"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        BUTTON = "button", "Run now"
        COMMAND = "command", "Command"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="compliance_runs")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    result = models.CharField(max_length=10, choices=Result.choices)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # [{key, status, reason, details, data}] in report order (names, dates, digests: no values).
    checks = models.JSONField(default=list, blank=True)
    # Since the app's previous run that ran: {"newly_failing": [keys], "fixed": [keys]}.
    changes = models.JSONField(default=dict, blank=True)
    # Why the sweep could not run (which upstream, what it answered).
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["app", "started_at"], name="compliance_app_started_idx")]

    def __str__(self) -> str:
        return f"compliance {self.app.name} {self.started_at:%Y-%m-%d %H:%M} {self.result}"

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class InstallationRepository(models.Model):
    """A repository the GitHub App can see: kept from the App's ``installation`` and
    ``installation_repositories`` events, or from reading its installations again."""

    full_name = models.CharField(max_length=200, unique=True)  # owner/name
    installation_id = models.BigIntegerField()
    account = models.CharField(max_length=100)  # who installed the App
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["full_name"]

    def __str__(self) -> str:
        return self.full_name
