from django.urls import path

from deployments.views import (
    compliance,
    deploys,
    environments,
    machine_config,
    onboarding,
    previews,
    profile,
    releases,
)

app_name = "deployments"

urlpatterns = [
    path("apps/add/", onboarding.app_add_page, name="app-add"),
    path("apps/add/confirm/", onboarding.app_add_action, name="app-add-confirm"),
    path(
        "apps/add/installations/",
        onboarding.installations_refresh_action,
        name="installations-refresh",
    ),
    path("apps/<id:pk>/setup/", onboarding.app_setup_page, name="app-setup"),
    path("releases/", releases.release_list_page, name="release-list"),
    path("releases/<id:pk>/", releases.release_detail, name="release-detail"),
    path("releases/sync/", releases.release_sync_now, name="release-sync"),
    path(
        "releases/<id:pk>/clear-bad/",
        releases.release_clear_bad_mark,
        name="release-clear-bad",
    ),
    path("environments/<id:pk>/rollback/", releases.rollback_form, name="rollback-form"),
    path("rollbacks/", releases.rollback_list_page, name="rollback-list"),
    path(
        "rollbacks/<id:pk>/acknowledge/",
        releases.emergency_acknowledge_action,
        name="emergency-acknowledge",
    ),
    path("previews/", previews.preview_list_page, name="preview-list"),
    path("previews/<id:pk>/", previews.preview_detail_page, name="preview-detail"),
    path("previews/<id:pk>/approve/", previews.preview_approve_action, name="preview-approve"),
    path("previews/<id:pk>/redeploy/", previews.preview_redeploy_action, name="preview-redeploy"),
    path("previews/<id:pk>/wake/", previews.preview_wake_action, name="preview-wake"),
    path("previews/<id:pk>/destroy/", previews.preview_destroy_action, name="preview-destroy"),
    path("deploys/", deploys.deploy_list_page, name="deploy-list"),
    path("deploys/<id:pk>/", deploys.deploy_detail, name="deploy-detail"),
    path("deploys/new/", deploys.deploy_new, name="deploy-new"),
    path("deploys/<id:pk>/cancel/", deploys.deploy_cancel_view, name="deploy-cancel"),
    path("deploys/<id:pk>/abort/", deploys.deploy_abort_view, name="deploy-abort"),
    path("environments/<id:pk>/", environments.environment_detail, name="environment-detail"),
    path(
        "environments/<id:pk>/machines/",
        environments.environment_machines_partial,
        name="environment-machines",
    ),
    path("environments/<id:pk>/lock/", environments.environment_lock_view, name="environment-lock"),
    path(
        "environments/<id:pk>/fly-toml/",
        machine_config.fly_toml_review,
        name="environment-fly-toml",
    ),
    path(
        "environments/<id:pk>/fly-toml/apply/",
        machine_config.fly_toml_apply_view,
        name="environment-fly-toml-apply",
    ),
    path(
        "environments/<id:pk>/reconcile/",
        machine_config.reconcile_view,
        name="environment-reconcile",
    ),
    path(
        "environments/<id:pk>/freeze-windows/",
        environments.freeze_window_add_view,
        name="freeze-window-add",
    ),
    path(
        "environments/<id:pk>/freeze-windows/<id:window_pk>/remove/",
        environments.freeze_window_remove_view,
        name="freeze-window-remove",
    ),
    path("ops/compliance/", compliance.compliance_page, name="compliance"),
    path("ops/compliance/run/", compliance.compliance_run_now, name="compliance-run-now"),
    path("ops/compliance/runs/<id:pk>/", compliance.compliance_run_detail, name="compliance-run"),
    path(
        "ops/compliance/runs/<id:pk>/report.md",
        compliance.compliance_run_markdown,
        name="compliance-run-markdown",
    ),
    path("ops/compliance/apps/<id:pk>/secrets/", compliance.app_secrets_page, name="app-secrets"),
    path(
        "ops/compliance/apps/<id:pk>/secrets/rotated/",
        compliance.secret_rotated_action,
        name="secret-rotated",
    ),
    path("profile/", profile.profile, name="profile"),
    path("profile/tokens/", profile.token_create, name="token-create"),
    path("profile/email/", profile.email_preferences_update, name="email-preferences"),
    path("profile/time-zone/", profile.time_zone_update, name="time-zone"),
    path("profile/tokens/<id:pk>/revoke/", profile.token_revoke, name="token-revoke"),
]
