from django.contrib import admin

from approvals.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log has no edit path anywhere."""

    list_display = ["id", "created_at", "actor_name", "verb", "target_repr", "app_name"]
    list_filter = ["actor_type"]
    search_fields = ["verb", "actor_name", "target_repr"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
