"""``POST /api/v1/builds``: CI registers the image it built for a commit."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from approvals import policy
from deployments.models import App, Build
from deployments.services.builds import IMAGE_REF_MAX, IMAGE_REFERENCE_RE, build_register
from hotdash.api import ApiError, api_endpoint, error_responses, json_body, require_fields
from hotdash.permissions import client_ip


def _build_json(build: Build) -> dict:
    return {
        "id": build.pk,
        "app": build.app.name,
        "sha": build.commit_sha,
        "image": build.image_ref,
        "digest": build.image_digest,
        "created_at": build.created_at.isoformat(),
    }


@api_endpoint("POST")
def builds_create(request: HttpRequest) -> JsonResponse:
    if not policy.can_request_deploy(request.user):
        raise ApiError(403, "forbidden", "Registering builds needs the deployer role.")
    data = json_body(request)
    require_fields(data, "app", "sha", "image", "digest")
    for name in ("app", "sha", "image", "digest"):
        if not isinstance(data[name], str):
            raise ApiError(422, "invalid_field", f"{name} must be a string.")
    app = App.objects.filter(name=data["app"]).first()
    if app is None:
        raise ApiError(404, "unknown_app", f"No app named {data['app'][:60]!r}.")
    build, created = build_register(
        app=app,
        commit_sha=data["sha"],
        image_ref=data["image"],
        image_digest=data["digest"],
        user=request.user,
        ip=client_ip(request),
    )
    return JsonResponse({"build": _build_json(build)}, status=201 if created else 200)


_BUILD_SCHEMA = {
    "type": "object",
    "required": ["app", "sha", "image", "digest"],
    "properties": {
        "app": {"type": "string", "minLength": 1, "description": "HotDash app name, e.g. hot-dash"},
        "sha": {"type": "string", "minLength": 1, "pattern": "^[0-9a-f]{40}$"},
        "image": {
            "type": "string",
            "minLength": 1,
            "maxLength": IMAGE_REF_MAX,
            "pattern": f"^{IMAGE_REFERENCE_RE.pattern}$",
            "description": "An OCI image reference, e.g. registry.fly.io/hot-dash:pr-18-abc1234",
        },
        "digest": {"type": "string", "minLength": 1, "pattern": "^sha256:[0-9a-f]{64}$"},
    },
}
_BUILD_OUT = {
    "type": "object",
    "required": ["build"],
    "properties": {
        "build": {
            "type": "object",
            "required": ["id", "app", "sha", "image", "digest", "created_at"],
            "properties": {
                "id": {"type": "integer"},
                "app": {"type": "string"},
                "sha": {"type": "string"},
                "image": {"type": "string"},
                "digest": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
            },
        }
    },
}
_JSON_BUILD = {"content": {"application/json": {"schema": _BUILD_OUT}}}

OPENAPI_PATHS = {
    "/builds": {
        "post": {
            "summary": "Register the image CI built for a commit (previews deploy it)",
            "operationId": "builds_create",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _BUILD_SCHEMA}},
            },
            "responses": {
                "201": {
                    "description": "Registered; open previews at this commit deploy it",
                    **_JSON_BUILD,
                },
                "200": {
                    "description": "Already registered with the same image and digest",
                    **_JSON_BUILD,
                },
                **error_responses(
                    {
                        403: {"forbidden": "the token's user is not a deployer"},
                        404: {"unknown_app": "no app has this name"},
                        409: {"build_conflict": "the commit already has a different build"},
                        422: {
                            "missing_fields": "a required field is absent or blank",
                            "invalid_field": "a field is not a string",
                            "invalid_sha": "sha is not a 40-character hex commit SHA",
                            "invalid_image": "image is not an image reference",
                            "invalid_digest": "digest is not sha256:<64 hex>",
                        },
                    },
                    body=True,
                ),
            },
        }
    }
}
