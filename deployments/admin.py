from django import forms
from django.contrib import admin
from django.db import models

from deployments.models import (
    App,
    Build,
    Deploy,
    Environment,
    FreezeWindow,
    GitHubIdentity,
    GitHubTeamRole,
    Notification,
    Preview,
    Release,
    SecretRotation,
)
from deployments.selectors.ops import notification_target


class FreezeWindowInline(admin.TabularInline):
    model = FreezeWindow
    extra = 0


class GitHubTeamRoleInline(admin.TabularInline):
    """Members of these GitHub teams hold these roles (applied at their next sign-in or role
    refresh: beat, or a membership/team webhook)."""

    model = GitHubTeamRole
    extra = 0
    verbose_name = "GitHub team role"


class AppAdminForm(forms.ModelForm):
    """The webhook signing secret is write-only: never rendered, kept when left blank, and
    listed as changed (the admin's audited change message names the field, not the value)
    only when a new one is typed."""

    notification_webhook_secret = forms.CharField(
        label=App._meta.get_field("notification_webhook_secret").verbose_name.capitalize(),
        required=False,
        max_length=App._meta.get_field("notification_webhook_secret").max_length,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.pop("notification_webhook_secret", None)  # blank means "unchanged"
        field = self.fields["notification_webhook_secret"]
        if self.instance.notification_webhook_secret:
            field.help_text = (
                "A secret is set. Leave blank to keep it; type a new one to replace it."
            )
        else:
            field.help_text = (
                "No secret is set: notifications are not sent until one is. Receivers check "
                "the X-HotDash-Signature header (sha256= HMAC of the body) with it."
            )

    def clean_notification_webhook_secret(self) -> str:
        return (
            self.cleaned_data["notification_webhook_secret"]
            or self.instance.notification_webhook_secret
        )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("notification_webhook_url") and not cleaned.get(
            "notification_webhook_secret"
        ):
            self.add_error(
                "notification_webhook_secret",
                "A webhook needs a signing secret: notifications are never sent unsigned.",
            )
        return cleaned


# A URL typed without a scheme is an https one (Django 6's default, said explicitly now).
HTTPS_URLS = {models.URLField: {"assume_scheme": "https"}}


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    form = AppAdminForm
    formfield_overrides = HTTPS_URLS
    list_display = ["name", "github_owner", "github_repo", "fly_org"]
    search_fields = ["name"]
    readonly_fields = ["created_at"]
    inlines = [GitHubTeamRoleInline]


@admin.register(GitHubIdentity)
class GitHubIdentityAdmin(admin.ModelAdmin):
    """Who signs in with GitHub; their roles come from their teams, so nothing here is edited
    (deactivate the user account to lock someone out at once)."""

    list_display = ["login", "github_id", "user", "teams", "refreshed_at"]
    search_fields = ["login", "user__username"]
    readonly_fields = ["user", "github_id", "login", "teams", "refreshed_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    formfield_overrides = HTTPS_URLS
    list_display = [
        "__str__",
        "kind",
        "fly_app_name",
        "region",
        "approvals_required",
        "allow_approval_bypass",
        "locked_at",
    ]
    list_filter = ["kind", "app"]
    inlines = [FreezeWindowInline]
    readonly_fields = [
        "locked_at",
        "locked_by",
        "lock_reason",
        "current_release",
        "health",
        "drift",
        "drift_checked_at",
        "drift_changed_at",
        "drift_error",
    ]
    fieldsets = [
        (None, {"fields": ["app", "name", "kind", "fly_app_name", "url"]}),
        (
            "Declared machine configuration",
            {
                "description": "What every machine of the environment must look like; "
                "rolled out by the next deploy or a reconcile.",
                "fields": [
                    "region",
                    ("machine_cpu_kind", "machine_cpus", "machine_memory_mb"),
                    ("machine_count", "min_machines_running"),
                    ("auto_stop_machines", "auto_start_machines"),
                    ("process_group", "internal_port"),
                    ("concurrency_type", "concurrency_soft_limit", "concurrency_hard_limit"),
                    ("kill_signal", "kill_timeout_seconds"),
                    ("restart_policy", "restart_max_retries"),
                ],
            },
        ),
        (
            "Health checks",
            {
                "fields": [
                    (
                        "health_http_path",
                        "health_http_interval_seconds",
                        "health_http_timeout_seconds",
                        "health_http_grace_seconds",
                    ),
                    (
                        "health_tcp_interval_seconds",
                        "health_tcp_timeout_seconds",
                        "health_tcp_grace_seconds",
                    ),
                    ("health_attempts", "verification_window_seconds"),
                ]
            },
        ),
        (
            "Rollout",
            {"fields": ["rollout_strategy", "max_unavailable_percent", "rollout_deadline_seconds"]},
        ),
        (
            "Approvals",
            {
                "fields": [
                    "approvals_required",
                    "allow_self_approval",
                    "allow_approval_bypass",
                    "approval_ttl_minutes",
                    "rollback_fast_path",
                ]
            },
        ),
        (
            "State",
            {
                "fields": [
                    ("locked_at", "locked_by", "lock_reason"),
                    ("current_release", "current_image_ref"),
                    ("health", "health_checked_at"),
                    ("drift", "drift_checked_at", "drift_changed_at", "drift_error"),
                ]
            },
        ),
    ]


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ["__str__", "validation", "is_prerelease", "published_at", "bad_marked_at"]
    list_filter = ["app", "validation", "is_prerelease"]
    search_fields = ["version", "commit_sha"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Deploy)
class DeployAdmin(admin.ModelAdmin):
    list_display = ["__str__", "environment", "kind", "state", "created_at"]
    list_filter = ["state", "kind"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Read-only delivery log; the webhook's path and secret are never shown."""

    list_display = ["created_at", "event", "app", "sent_to", "state", "attempts", "last_line"]
    list_filter = ["state", "channel", "event", "app"]
    list_select_related = ["app", "recipient"]
    exclude = ["payload"]

    @admin.display(description="sent to")
    def sent_to(self, obj: Notification) -> str:
        return notification_target(obj)

    @admin.display(description="last result")
    def last_line(self, obj: Notification) -> str:
        lines = obj.last_error.splitlines()
        return lines[-1] if lines else ""

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Build, Preview)
class ReadOnlyAdmin(admin.ModelAdmin):
    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(SecretRotation)
class SecretRotationAdmin(admin.ModelAdmin):
    """A secret's own rotation period (at most 180 days). Rotations done outside HotDash are
    recorded on the app's Secrets page, with a comment, not here."""

    list_display = ["name", "app", "location", "rotation_days", "rotated_at"]
    list_filter = ["app", "location"]
    search_fields = ["name"]
    readonly_fields = ["rotated_at", "rotated_by", "comment"]
