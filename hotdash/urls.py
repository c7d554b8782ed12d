from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path, register_converter, reverse_lazy
from django.views.generic import RedirectView

from approvals.auth import ThrottledLoginView
from deployments.views.github_signin import github_sign_in_callback, github_sign_in_start
from deployments.views.overview import overview
from deployments.webhooks import github_webhook
from hotdash import views
from hotdash.health import health
from hotdash.input_gate import IdConverter

# <id:pk>: an id that fits the database; a longer number is no match, so a 404.
register_converter(IdConverter, "id")

urlpatterns = [
    path("", overview, name="overview"),
    path("health", health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("ops/", views.ops, name="ops"),
    path("ops/upstreams/", views.ops_upstreams, name="ops-upstreams"),
    path("ops/sandbox/", views.sandbox_control, name="sandbox-control"),
    path("ops/backup/", views.ops_backup_now, name="ops-backup-now"),
    path("ops/runbook/", views.ops_runbook, name="ops-runbook"),
    path("ops/runbook/<str:name>/", views.ops_runbook_app, name="ops-runbook-app"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/github/", github_sign_in_start, name="github-sign-in-start"),
    path("accounts/github/callback/", github_sign_in_callback, name="github-sign-in-callback"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # One password form, so one throttle: the admin signs in through the dashboard's page.
    path(
        "admin/login/",
        login_not_required(RedirectView.as_view(url=reverse_lazy("login"), query_string=True)),
        name="admin-login",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("hotdash.api_urls")),
    path("webhooks/github", github_webhook, name="github-webhook"),
    path("", include("deployments.urls")),
    path("", include("approvals.urls")),
]
