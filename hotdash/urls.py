from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from deployments.views.overview import overview
from deployments.webhooks import github_webhook
from hotdash import views

urlpatterns = [
    path("", overview, name="overview"),
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("ops/", views.ops, name="ops"),
    path("ops/sandbox/", views.sandbox_control, name="sandbox-control"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("hotdash.api_urls")),
    path("webhooks/github", github_webhook, name="github-webhook"),
    path("", include("deployments.urls")),
    path("", include("approvals.urls")),
]
