"""/api/v1/: every JSON endpoint, and the OpenAPI schema assembled from the API modules."""

from __future__ import annotations

from importlib import import_module

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from deployments.api_builds import builds_create
from deployments.api_deploys import (
    deploys_cancel,
    deploys_collection,
    deploys_decide,
    deploys_get,
    rollbacks_create,
)
from deployments.api_releases import app_releases
from hotdash.api import OPENAPI_COMPONENTS
from hotdash.errors import error_response
from hotdash.version import __version__

# Modules that define API views and an OPENAPI_PATHS dict (paths relative to /api/v1).
API_MODULES: list[str] = [
    "deployments.api_builds",
    "deployments.api_deploys",
    "deployments.api_releases",
]


@login_not_required
@require_GET
def openapi_schema(request: HttpRequest) -> JsonResponse:
    paths: dict = {}
    for name in API_MODULES:
        paths.update(import_module(name).OPENAPI_PATHS)
    schema = {
        "openapi": "3.1.0",
        "info": {"title": "HotDash API", "version": __version__},
        "servers": [{"url": "/api/v1"}],
        "components": OPENAPI_COMPONENTS,
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }
    return JsonResponse(schema)


@csrf_exempt
@login_not_required
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Any other path under /api/v1/: the API's error shape, not the dashboard's HTML page."""
    return error_response(404, "not_found", f"No API operation at {request.path[:200]!r}.")


# Path parameters are matched as any text and checked by the view (names and ids alike), so
# one that names nothing is the operation's own JSON 404.
urlpatterns = [
    path("openapi.json", openapi_schema, name="openapi"),
    path("apps/<path:app>/releases", app_releases, name="api-app-releases"),
    path("builds", builds_create, name="api-builds-create"),
    path("deploys", deploys_collection, name="api-deploys-create"),
    path("deploys/<str:pk>", deploys_get, name="api-deploys-get"),
    path("deploys/<str:pk>/decisions", deploys_decide, name="api-deploys-decide"),
    path("deploys/<str:pk>/cancel", deploys_cancel, name="api-deploys-cancel"),
    path("rollbacks", rollbacks_create, name="api-rollbacks-create"),
    re_path(r"^", api_not_found, name="api-not-found"),
]
