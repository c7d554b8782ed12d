"""Every Fly route the sandbox serves, walked with a scripted scenario: each request (HotDash's
own client where it has the call) and each answer validates against the full schema of Fly's
Machines OpenAPI description (tests/fixtures/reference/fly), patched where the live API differs
(known_differences.py: the snapshot predates suspend and secrets, leaves fields optional that
the live API always returns, and so on). Statuses an operation does not list must carry Fly's
error body.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hotdash.integrations.fly import fly_client
from hotdash.integrations.http import PermanentAPIError, use_transport
from hotdash.sandbox import demo
from tests.fixtures.sandbox import SandboxTransport
from tests.sandbox.conformance import ValidatingTransport, described_routes
from tests.sandbox.known_differences import fly_reference

PREVIEW = "hot-dash-pr-1"


@pytest.fixture
def validating(sandbox) -> Iterator[ValidatingTransport]:
    transport = ValidatingTransport(
        SandboxTransport(app=sandbox.app), fly_reference(), sandbox.fly.router
    )
    with use_transport(transport):
        yield transport


@pytest.fixture
def raw(sandbox, validating) -> Iterator[httpx.Client]:
    """Plain requests for the routes HotDash's client has no call for."""
    with httpx.Client(
        transport=validating, base_url=sandbox.fly_url, headers={"Authorization": "Bearer t"}
    ) as client:
        yield client


def test_every_route_has_a_described_operation(sandbox):
    routes = described_routes(sandbox.fly.router, fly_reference())
    assert [route for route, path in routes.items() if path is None] == []


def test_every_route_answers_as_described(sandbox, validating, raw):
    fly = fly_client(clock=sandbox.clock.now, sleep=lambda _s: None)
    app = demo.PRODUCTION_FLY_APP
    fly.list_apps(demo.FLY_ORG)
    fly.get_app(app)
    fly.create_app(PREVIEW, demo.FLY_ORG)
    machine = fly.list_machines(app, metadata={"fly_process_group": "app"})[0]
    fly.get_machine(app, machine.id)
    assert raw.get(f"/apps/{app}/machines/{machine.id}/events").status_code == 200
    lease = fly.acquire_lease(app, machine.id, ttl=30)
    fly.get_lease(app, machine.id)
    config = {**machine.config, "image": demo.release("1.3.0").image_ref}
    fly.update_machine(
        app, machine.id, config, current_version=machine.instance_id, nonce=lease.nonce
    )
    fly.wait_for_state(app, machine.id, "started")
    fly.stop_machine(app, machine.id, nonce=lease.nonce, signal="SIGTERM", timeout="30s")
    fly.start_machine(app, machine.id, nonce=lease.nonce)
    fly.release_lease(app, machine.id, lease.nonce)
    fly.suspend_machine(app, machine.id)
    fly.list_secrets(app)
    fly.reveal_secrets(app)
    fly.set_secrets(app, {"NEW_SECRET": "s3cret", "DATABASE_URL": None})
    created = fly.create_machine(PREVIEW, config, region=demo.REGION)
    fly.wait_for_state(PREVIEW, created.id, "started", instance_id=created.instance_id)
    fly.delete_machine(PREVIEW, created.id, force=True)
    fly.delete_app(PREVIEW)

    # Errors: statuses the description does not list carry Fly's {"error"} body.
    assert raw.get(f"/apps/{app}/machines/nope").status_code == 404
    assert raw.delete(f"/apps/{app}/machines/{machine.id}/lease").status_code == 400
    assert (
        raw.get(f"/apps/{app}/machines/{machine.id}/wait?state=started&timeout=1").status_code
        == 408
    )

    problems = validating.problems()
    assert not problems, "\n".join(problems)
    served = {f"{method} {pattern}" for method, pattern in sandbox.fly.router.routes()}
    assert served - validating.routes() == set()


def test_app_create_accepts_both_field_names(sandbox, validating):
    fly = fly_client()
    for body in (
        {"app_name": "by-app-name", "org_slug": "o"},
        {"name": "by-name", "org_slug": "o"},
    ):
        assert fly.api.request("POST", "/apps", json=body).status_code == 201
    assert {"by-app-name", "by-name"} <= set(sandbox.fly.apps)
    # "name" is not the description's CreateAppRequest field, yet both validate: the schema
    # allows additional properties.
    assert validating.problems() == []


def test_wait_accepts_instance_id_and_version(sandbox, validating):
    fly = fly_client()
    machine = fly.list_machines(demo.PRODUCTION_FLY_APP)[0]
    path = f"/apps/{demo.PRODUCTION_FLY_APP}/machines/{machine.id}/wait"
    for key in ("instance_id", "version"):
        response = fly.api.request("GET", path, params={key: machine.instance_id, "timeout": 5})
        assert response.json() == {"ok": True}
    assert validating.problems() == []


def test_error_bodies_have_fly_shape(sandbox):
    fly = fly_client()
    with pytest.raises(PermanentAPIError, match="already been taken"):
        fly.create_app(demo.PRODUCTION_FLY_APP, demo.FLY_ORG)
    response = httpx.Client(transport=SandboxTransport(app=sandbox.app)).post(
        f"{sandbox.fly_url}/apps",
        json={"app_name": demo.PRODUCTION_FLY_APP, "org_slug": demo.FLY_ORG},
        headers={"Authorization": "Bearer t"},
    )
    assert response.status_code == 422
    assert response.json() == {"error": "Validation failed: Name has already been taken"}
