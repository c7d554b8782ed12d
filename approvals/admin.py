from django.contrib import admin

from approvals.models import AuditEvent, AuditVerification

# A bulk delete writes its admin LogEntry rows with bulk_create, which sends no post_save, so
# those deletions would escape the audit log (approvals.signals); delete objects one by one.
admin.site.disable_action("delete_selected")


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit log has no edit path anywhere."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "actor_name", "verb", "target_repr", "app_name"]
    list_filter = ["actor_type"]
    search_fields = ["verb", "actor_name", "target_repr"]
    exclude = ["search_text"]


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    list_display = ["id", "finished_at", "ok", "events_verified", "broken_event_id", "reason"]
