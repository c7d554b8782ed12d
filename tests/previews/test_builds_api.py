"""POST /api/v1/builds: CI registers a commit's image; an open preview at that commit deploys it."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent
from deployments.models import Build, Deploy, Preview
from deployments.services.tokens import api_token_create
from deployments.tasks.previews import preview_build_ready
from tests.previews.conftest import preview_deploys, preview_of

SHA = "a" * 40
DIGEST = "sha256:" + "b" * 64


@pytest.fixture
def call(client):
    def post(user, body, token: str | None = None):
        if token is None and user is not None:
            token = api_token_create(user=user, name="ci")[1]
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        return client.post("/api/v1/builds", data=body, content_type="application/json", **headers)

    return post


def body(**changes):
    return {"app": "hot-dash", "sha": SHA, "image": "registry.fly.io/hot-dash:pr-1", **changes}


def test_register_is_idempotent_and_a_different_image_is_a_conflict(demo, call, requester):
    created = call(requester, body(digest=DIGEST))
    assert created.status_code == 201, created.content
    assert created.json()["build"]["sha"] == SHA
    again = call(requester, body(digest=DIGEST))
    assert again.status_code == 200 and again.json()["build"]["id"] == created.json()["build"]["id"]
    conflict = call(requester, body(digest=DIGEST, image="registry.fly.io/hot-dash:other"))
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "build_conflict"
    assert Build.objects.filter(commit_sha=SHA).count() == 1
    event = AuditEvent.objects.get(verb="build.registered", data__commit=SHA)
    assert event.actor_name == "requester"


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"digest": DIGEST, "sha": "abc123"}, 422, "invalid_sha"),
        ({"digest": "md5:123"}, 422, "invalid_digest"),
        ({"digest": DIGEST, "image": "has space"}, 422, "invalid_image"),
        ({"digest": DIGEST, "app": "nope"}, 404, "unknown_app"),
        ({"digest": None}, 422, "missing_fields"),
        ({"digest": DIGEST, "sha": 12}, 422, "invalid_field"),
    ],
)
def test_bad_registrations_get_a_clear_error(demo, call, requester, changes, status, code):
    response = call(requester, body(**changes))
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Build.objects.filter(commit_sha=SHA).exists()


def test_needs_a_token_of_a_deployer(demo, call, viewer):
    assert call(None, body(digest=DIGEST)).status_code == 401
    assert call(None, body(digest=DIGEST), token="hd_not-a-token").status_code == 401
    forbidden = call(viewer, body(digest=DIGEST))
    assert forbidden.status_code == 403
    assert not Build.objects.filter(commit_sha=SHA).exists()


def test_a_preview_waits_for_ci_then_deploys_the_registered_build(
    world, process_deliveries, call, requester, settings, django_capture_on_commit_callbacks
):
    settings.SANDBOX_MODE = False  # real CI: no simulated builds
    pull = world.open_pull("feat: needs ci", "needs-ci")
    number, head = pull["number"], pull["head_sha"]
    [delivery] = process_deliveries()
    assert "waiting for the CI build" in delivery.detail
    assert preview_deploys(number) == []
    [comment] = [c for c in world.github.comments.values() if c["number"] == number]
    assert "waiting for the CI build" in comment["body"]

    image = f"registry.fly.io/hot-dash:pr-{number}"
    with django_capture_on_commit_callbacks() as callbacks:
        response = call(requester, body(sha=head, image=image, digest=DIGEST))
    assert response.status_code == 201
    assert len(callbacks) == 1  # the deploy is triggered once the build is committed
    preview_build_ready(response.json()["build"]["id"])  # what the worker runs

    [deploy] = preview_deploys(number)
    assert deploy.state == Deploy.State.QUEUED
    assert (deploy.image_ref, deploy.image_digest, deploy.commit_sha) == (image, DIGEST, head)
    assert preview_of(number).state == Preview.State.CREATING
    [comment] = [c for c in world.github.comments.values() if c["number"] == number]
    assert "**Creating**" in comment["body"] and f"Deploying `{head[:7]}`" in comment["body"]


def test_openapi_schema_lists_the_builds_endpoint(client, db):
    schema = client.get("/api/v1/openapi.json").json()
    post = schema["paths"]["/builds"]["post"]
    assert set(post["responses"]) >= {"201", "200", "401", "403", "404", "409", "422"}
