"""GET /api/v1/apps/{app}/releases: every release with what makes it trustworthy."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from approvals import policy
from deployments.models import App, Release
from deployments.selectors.releases import (
    ReleaseFilters,
    ReleaseRow,
    release_blockers,
    releases_by_app,
)
from hotdash.api import ApiError, api_endpoint, error_responses


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def release_json(row: ReleaseRow) -> dict[str, Any]:
    release: Release = row.release
    return {
        "id": release.pk,
        "version": release.version,
        "tag": release.tag,
        "prerelease": release.is_prerelease,
        "published_at": _iso(release.published_at),
        "commit_sha": release.commit_sha,
        "validation": release.validation,
        "validation_results": release.validation_results,
        "deployable": release.is_deployable,
        "not_deployable_because": release_blockers(release),
        "bad_mark": {
            "marked_at": _iso(release.bad_marked_at),
            "marked_by": release.bad_marked_by.get_username() if release.bad_marked_by else None,
            "reason": release.bad_reason,
        }
        if release.is_bad
        else None,
        "deleted_on_github_at": _iso(release.deleted_on_github_at),
        "live_in": [env.name for env in row.live_in],
        "deployed_to": sorted(row.deployed_to),
        "artifact": {
            "name": release.artifact_name,
            "sha256": release.artifact_sha256,
            "github_digest": release.artifact_digest,
        },
        "image": {"ref": release.image_ref, "digest": release.image_digest},
    }


@api_endpoint("GET")
def app_releases(request: HttpRequest, app: str) -> JsonResponse:
    if not policy.can_view(request.user):
        raise ApiError(403, "forbidden", "Your role does not allow reading releases.")
    found = App.objects.filter(name=app).first()
    if found is None:
        raise ApiError(404, "unknown_app", f"No app is named {app!r}.")
    filters = ReleaseFilters.from_query(request.GET)
    (group,) = releases_by_app(apps=[found], filters=filters)
    return JsonResponse({"app": app, "releases": [release_json(row) for row in group.rows]})


_RELEASE_SCHEMA = {
    "type": "object",
    "required": ["id", "version", "tag", "prerelease", "validation", "deployable", "live_in"],
    "properties": {
        "id": {"type": "integer"},
        "version": {"type": "string"},
        "tag": {"type": "string"},
        "prerelease": {"type": "boolean"},
        "published_at": {"type": ["string", "null"], "format": "date-time"},
        "commit_sha": {"type": "string"},
        "validation": {"type": "string", "enum": [c.value for c in Release.Validation]},
        "validation_results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "check": {"type": "string"},
                    "ok": {"type": "boolean"},
                    "message": {"type": "string"},
                },
            },
        },
        "deployable": {"type": "boolean"},
        "not_deployable_because": {"type": "array", "items": {"type": "string"}},
        "bad_mark": {
            "type": ["object", "null"],
            "properties": {
                "marked_at": {"type": "string", "format": "date-time"},
                "marked_by": {"type": ["string", "null"]},
                "reason": {"type": "string"},
            },
        },
        "deleted_on_github_at": {"type": ["string", "null"], "format": "date-time"},
        "live_in": {"type": "array", "items": {"type": "string"}},
        "deployed_to": {"type": "array", "items": {"type": "string"}},
        "artifact": {"type": "object"},
        "image": {"type": "object"},
    },
}

OPENAPI_PATHS = {
    "/apps/{app}/releases": {
        "get": {
            "summary": "Every release of an app, newest first by SemVer precedence",
            "operationId": "listAppReleases",
            "parameters": [
                {"name": "app", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "prereleases",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["include", "exclude", "only"]},
                },
                {"name": "deployable", "in": "query", "schema": {"type": "boolean"}},
                {
                    "name": "environment",
                    "in": "query",
                    "description": "Only releases that were ever deployed to this environment.",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The releases",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "app": {"type": "string"},
                                    "releases": {"type": "array", "items": _RELEASE_SCHEMA},
                                },
                            }
                        }
                    },
                },
                **error_responses(
                    {
                        403: {"forbidden": "the token's user has no role"},
                        404: {"unknown_app": "no app has this name"},
                    }
                ),
            },
        }
    }
}
