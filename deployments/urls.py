from django.urls import path

from deployments.views import deploys, previews, releases

app_name = "deployments"

urlpatterns = [
    path("releases/", releases.release_list_page, name="release-list"),
    path("releases/<int:pk>/", releases.release_detail, name="release-detail"),
    path("releases/sync/", releases.release_sync_now, name="release-sync"),
    path(
        "releases/<int:pk>/clear-bad/",
        releases.release_clear_bad_mark,
        name="release-clear-bad",
    ),
    path("environments/<int:pk>/rollback/", releases.rollback_form, name="rollback-form"),
    path("rollbacks/", releases.rollback_list_page, name="rollback-list"),
    path("previews/", previews.preview_list_page, name="preview-list"),
    path(
        "previews/<int:pk>/redeploy/", previews.preview_redeploy_action, name="preview-redeploy"
    ),
    path("previews/<int:pk>/wake/", previews.preview_wake_action, name="preview-wake"),
    path("previews/<int:pk>/destroy/", previews.preview_destroy_action, name="preview-destroy"),
    path("deploys/", deploys.deploy_list_page, name="deploy-list"),
    path("deploys/<int:pk>/", deploys.deploy_detail, name="deploy-detail"),
]
