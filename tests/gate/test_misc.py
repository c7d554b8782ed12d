"""Image references, private caching of authenticated answers, malformed pull_request payloads,
and a schema that says which strings may not be empty."""

from __future__ import annotations

import copy
import json

import pytest

from deployments.models import Build, Preview, WebhookDelivery
from deployments.services.tokens import api_token_create
from tests.previews.conftest import REFERENCE, preview_of

SHA = "a" * 40
DIGEST = "sha256:" + "b" * 64


@pytest.mark.django_db
@pytest.mark.parametrize(
    "image",
    [
        "../../etc/passwd",
        "registry.fly.io/hot-dash:pr\x00-1",
        "registry.fly.io/Hot-Dash:latest",
        "registry.fly.io/hot-dash:",
        "registry.fly.io//hot-dash",
        "registry.fly.io/hot-dash:" + "t" * 129,
        "-registry/x",
        "hot dash",
        "registry.fly.io/hot-dash@sha256:short",
    ],
)
def test_image_references_outside_the_oci_grammar_are_refused(api, requester, image):
    body = {"app": "hot-dash", "sha": SHA, "image": image, "digest": DIGEST}
    response = api(requester, "post", "/builds", body)
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] in ("invalid_image", "invalid_text")
    assert not Build.objects.filter(commit_sha=SHA).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "image",
    [
        "registry.fly.io/hot-dash:pr-18-abc1234",
        "localhost:5000/team/hot-dash:v1.2.3",
        "hot-dash",
        "ghcr.io/acme/hot_dash__x/app:1",
        "[::1]:5000/hot-dash:latest",
        "registry.fly.io/hot-dash@" + DIGEST,
        "registry.fly.io/hot-dash:v1@" + DIGEST,
    ],
)
def test_image_references_in_the_oci_grammar_are_accepted(api, requester, image):
    body = {"app": "hot-dash", "sha": SHA, "image": image, "digest": DIGEST}
    assert api(requester, "post", "/builds", body).status_code == 201


@pytest.mark.django_db
def test_authenticated_pages_and_api_answers_are_private_and_not_stored(
    client, demo, viewer, sandbox
):
    client.force_login(viewer)
    for path in ("/", "/releases/", "/audit/", "/no-such-page/"):
        directives = {d.strip() for d in client.get(path)["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= directives, path
    token = api_token_create(user=viewer, name="t")[1]
    response = client.get(
        "/api/v1/apps/hot-dash/releases", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert {"private", "no-store"} <= {d.strip() for d in response["Cache-Control"].split(",")}


@pytest.mark.django_db
def test_anonymous_public_answers_stay_cacheable(client, db):
    assert "no-store" not in client.get("/api/v1/openapi.json").get("Cache-Control", "")


@pytest.mark.parametrize("missing", ["head", "base", "number"])
def test_a_signed_pull_request_missing_required_fields_is_malformed_and_changes_nothing(
    world, post_delivery, process_deliveries, missing
):
    pull = world.open_pull("feat: trusted", "trusted")
    [opened] = process_deliveries()
    assert opened.state == WebhookDelivery.State.PROCESSED, opened.detail
    preview = preview_of(pull["number"])
    assert not preview.is_fork

    payload = json.loads((REFERENCE / "pull_request.synchronize.payload.json").read_bytes())
    payload["repository"]["full_name"] = "hotdash-demo/hot-dash"
    payload["number"] = pull["number"]
    data = copy.deepcopy(payload["pull_request"])
    data["number"] = pull["number"]
    del data[missing]
    payload["pull_request"] = data
    assert post_delivery("pull_request", payload).status_code == 202
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.FAILED
    assert delivery.detail.startswith("malformed payload")
    assert missing in delivery.detail
    preview.refresh_from_db()
    assert not preview.is_fork and preview.state != Preview.State.AWAITING_APPROVAL


def _operation_body(schema: dict, path: str) -> dict:
    content = schema["paths"][path]["post"]["requestBody"]["content"]
    return content["application/json"]["schema"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/deploys", ["app", "environment", "version", "reason"]),
        ("/deploys/{id}/cancel", ["reason"]),
        ("/builds", ["app", "sha", "image", "digest"]),
    ],
)
def test_the_schema_says_required_strings_may_not_be_empty(client, path, fields):
    schema = client.get("/api/v1/openapi.json").json()
    properties = _operation_body(schema, path)["properties"]
    for name in fields:
        assert properties[name].get("minLength") == 1, name
