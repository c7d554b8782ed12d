from django.urls import path

from approvals import audit_views, views

app_name = "approvals"

urlpatterns = [
    path("approvals/", views.queue, name="queue"),
    path("approvals/pending-count/", views.pending_count, name="pending-count"),
    path("approvals/<id:pk>/", views.drawer, name="drawer"),
    path("approvals/deploy/<id:deploy_pk>/", views.drawer, name="deploy-drawer"),
    path("approvals/<id:pk>/decide/", views.decide, name="decide"),
    path("approvals/<id:pk>/bypass/", views.bypass, name="bypass"),
    path("audit/", audit_views.audit, name="audit"),
    path("audit/export.csv", audit_views.audit_export, {"fmt": "csv"}, name="audit-export-csv"),
    path(
        "audit/export.jsonl", audit_views.audit_export, {"fmt": "jsonl"}, name="audit-export-jsonl"
    ),
]
