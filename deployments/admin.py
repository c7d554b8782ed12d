from django.contrib import admin

from deployments.models import App, Build, Deploy, Environment, FreezeWindow, Preview, Release


class FreezeWindowInline(admin.TabularInline):
    model = FreezeWindow
    extra = 0


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["name", "github_owner", "github_repo", "fly_org"]
    search_fields = ["name"]
    exclude = ["notification_webhook_secret"]


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "fly_app_name", "region", "approvals_required", "locked_at"]
    list_filter = ["kind", "app"]
    inlines = [FreezeWindowInline]
    readonly_fields = ["locked_at", "locked_by", "lock_reason", "current_release", "health"]


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


@admin.register(Build, Preview)
class ReadOnlyAdmin(admin.ModelAdmin):
    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
