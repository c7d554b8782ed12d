from django.urls import path

from approvals import audit_views, views

app_name = "approvals"

urlpatterns = [
    path("approvals/", views.queue, name="queue"),
    path("approvals/pending-count/", views.pending_count, name="pending-count"),
    path("audit/", audit_views.audit, name="audit"),
]
