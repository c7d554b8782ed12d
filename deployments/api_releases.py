"""GET /api/v1/apps/{app}/releases: every release with what makes it trustworthy."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from approvals import policy
from deployments.models import App, Release
from deployments.selectors.releases import (
    ReleaseFilters,
    ReleaseRow,
    release_blockers,
    releases_by_app,
)
from deployments.services.gates import release_deploy_refusals
from hotdash.api import ApiError, api_endpoint, error_responses


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def release_json(row: ReleaseRow, refusals: dict[str, list[str]]) -> dict[str, Any]:
    """``refusals``: why the release may not go to each environment now, by its name."""
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
        "environments": [
            {
                "name": stage.environment.name,
                "outcome": stage.outcome,
                "live": stage.environment.current_release_id == release.pk,
                "may_deploy_now": not refusals[stage.environment.name],
                "not_now_because": refusals[stage.environment.name],
            }
            for stage in row.pipeline
        ],
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
    now = timezone.now()
    releases = [row.release for row in group.rows]
    by_environment = {
        env.name: release_deploy_refusals(environment=env, releases=releases, now=now)
        for env in group.environments
    }
    return JsonResponse(
        {
            "app": app,
            "releases": [
                release_json(
                    row,
                    {name: refusals[row.release.pk] for name, refusals in by_environment.items()},
                )
                for row in group.rows
            ],
        }
    )


_RELEASE_SCHEMA = {
    "type": "object",
    "required": [
        "id",
        "version",
        "tag",
        "prerelease",
        "validation",
        "deployable",
        "live_in",
        "environments",
    ],
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
        "environments": {
            "type": "array",
            "description": "The release's pipeline: each environment of the app in promotion "
            "order, how the release went there and whether it may be deployed there now.",
            "items": {
                "type": "object",
                "required": ["name", "outcome", "live", "may_deploy_now", "not_now_because"],
                "properties": {
                    "name": {"type": "string"},
                    "outcome": {
                        "type": "string",
                        "enum": ["succeeded", "failed", "never"],
                        "description": "succeeded: it ran there successfully at least once; "
                        "failed: every run there failed; never: it never ran there.",
                    },
                    "live": {"type": "boolean"},
                    "may_deploy_now": {
                        "type": "boolean",
                        "description": "Release, lock, freeze window and promotion rule allow a "
                        "deploy now (CI checks are checked when requesting).",
                    },
                    "not_now_because": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Why not, one sentence each; empty when it may.",
                    },
                },
            },
        },
        "artifact": {"type": "object"},
        "image": {"type": "object"},
    },
}

OPENAPI_PATHS = {
    "/apps/{app}/releases": {
        "get": {
            "summary": "Every release of an app, newest first by SemVer precedence",
            "description": "Each release says where it ran (its pipeline) and whether it may be "
            "deployed to each environment now, with the reasons when not.",
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
