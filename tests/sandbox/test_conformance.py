"""Every Fly request our client sends and every sandbox answer, for the endpoints we use,
validates against Fly's OpenAPI spec (machines-openapi.yaml, January 2024 snapshot).

Known, deliberate differences: the live API has grown since the snapshot.
* Endpoints missing from the spec are not validated: machine suspend, app secrets.
* Status codes the spec does not list (404, 408, 409, 412, 422, 429) are not validated; their
  bodies are Fly's {"error", "status"} shape, checked in test_error_bodies_have_fly_shape.
* Operations whose spec response declares no content (start, stop, delete, lease release)
  answer JSON on the live API ({"previous_state"...}, {"ok": true}); bodies are not checked.
* App create: the spec/docs body field is app_name, current fly-go sends name; the sandbox
  accepts both (test_app_create_accepts_both_field_names).
* Machine create answers 200 in the spec and live (older docs said 201); the client accepts
  any 2xx.
* /wait: the spec names the parameter instance_id; newer fly-go sends version. Both accepted.
"""

from __future__ import annotations

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import MissingData

from hotdash.integrations.fly import fly_client
from hotdash.integrations.http import PermanentAPIError, use_transport
from hotdash.sandbox import demo
from tests.fixtures import FLY_OPENAPI_SPEC
from tests.fixtures.sandbox import SandboxTransport

SPEC = OpenAPI.from_file_path(str(FLY_OPENAPI_SPEC))
NOT_IN_SPEC = ("/suspend", "/secrets")


class ValidatingTransport(httpx.BaseTransport):
    """Checks each Fly exchange against the spec and remembers what it checked."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.validated: list[str] = []
        self.failures: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        path = request.url.path.removeprefix("/fly")
        if path.endswith(NOT_IN_SPEC):
            return response
        spec_request = MockRequest(
            "https://api.machines.dev",
            request.method.lower(),
            path,
            args=dict(request.url.params),
            headers=dict(request.headers),
            data=request.content or None,
            content_type=request.headers.get("content-type", "application/json"),
        )
        label = f"{request.method} {path} -> {response.status_code}"
        try:
            SPEC.validate_request(spec_request)
        except PathNotFound:
            self.failures.append(f"{label}: path not in spec")
            return response
        except Exception as exc:  # noqa: BLE001 - collect every kind of validation error
            self.failures.append(f"{label}: request: {exc!r}")
        spec_response = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=response.headers.get("content-type", "").split(";")[0],
        )
        try:
            SPEC.validate_response(spec_request, spec_response)
            self.validated.append(label)
        except ResponseNotFound:
            pass  # a status the spec does not list; see the module docstring
        except MissingData:
            # The spec writes "no body" as `content: {}`, which openapi-core reads as "a body
            # is required"; an empty body is exactly what it means.
            if response.content:
                self.failures.append(f"{label}: response: body does not match")
            else:
                self.validated.append(f"{label} (empty)")
        except Exception as exc:  # noqa: BLE001
            cause = exc.__cause__
            if isinstance(cause, MediaTypeNotFound) and not cause.availableMimetypes:
                self.validated.append(f"{label} (no content declared)")
            else:
                details = [str(e) for e in getattr(cause, "schema_errors", ())]
                self.failures.append(f"{label}: response: {exc!r} {cause!r} {details}")
        return response


@pytest.fixture
def validating(sandbox):
    transport = ValidatingTransport(SandboxTransport(app=sandbox.app))
    with use_transport(transport):
        yield transport


def test_every_fly_call_we_make_conforms(sandbox, validating):
    fly = fly_client(clock=sandbox.clock.now, sleep=lambda _s: None)
    app = demo.PRODUCTION_FLY_APP
    fly.list_apps(demo.FLY_ORG)
    fly.get_app(app)
    fly.create_app("hot-dash-pr-1", demo.FLY_ORG)
    machine = fly.list_machines(app, metadata={"fly_process_group": "app"})[0]
    fly.get_machine(app, machine.id)
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
    created = fly.create_machine("hot-dash-pr-1", config, region=demo.REGION)
    fly.wait_for_state("hot-dash-pr-1", created.id, "started", instance_id=created.instance_id)
    fly.delete_machine("hot-dash-pr-1", created.id, force=True)
    fly.delete_app("hot-dash-pr-1")
    fly.suspend_machine(app, machine.id)  # not in the spec: skipped
    fly.list_secrets(app)  # not in the spec: skipped
    assert validating.failures == []
    checked = {label.split(" (")[0] for label in validating.validated}
    assert checked >= {
        "GET /v1/apps -> 200",
        "POST /v1/apps -> 201",
        "GET /v1/apps/hot-dash -> 200",
        "DELETE /v1/apps/hot-dash-pr-1 -> 202",
        f"GET /v1/apps/hot-dash/machines/{machine.id} -> 200",
        f"POST /v1/apps/hot-dash/machines/{machine.id} -> 200",
        f"POST /v1/apps/hot-dash/machines/{machine.id}/lease -> 200",
        f"GET /v1/apps/hot-dash/machines/{machine.id}/lease -> 200",
        f"DELETE /v1/apps/hot-dash/machines/{machine.id}/lease -> 200",
        f"GET /v1/apps/hot-dash/machines/{machine.id}/wait -> 200",
        f"POST /v1/apps/hot-dash/machines/{machine.id}/stop -> 200",
        f"POST /v1/apps/hot-dash/machines/{machine.id}/start -> 200",
        "POST /v1/apps/hot-dash-pr-1/machines -> 200",
        f"DELETE /v1/apps/hot-dash-pr-1/machines/{created.id} -> 200",
    }, sorted(checked)


def test_app_create_accepts_both_field_names(sandbox, validating):
    fly = fly_client()
    for body in (
        {"app_name": "by-app-name", "org_slug": "o"},
        {"name": "by-name", "org_slug": "o"},
    ):
        assert fly.api.request("POST", "/apps", json=body).status_code == 201
    assert {"by-app-name", "by-name"} <= set(sandbox.fly.apps)
    # The body with "name" is not the spec's CreateAppRequest field, yet both validate:
    # the spec's schema allows additional properties.
    assert validating.failures == []


def test_wait_accepts_instance_id_and_version(sandbox, validating):
    fly = fly_client()
    machine = fly.list_machines(demo.PRODUCTION_FLY_APP)[0]
    path = f"/apps/{demo.PRODUCTION_FLY_APP}/machines/{machine.id}/wait"
    for key in ("instance_id", "version"):
        response = fly.api.request("GET", path, params={key: machine.instance_id, "timeout": 5})
        assert response.json() == {"ok": True}


def test_error_bodies_have_fly_shape(sandbox):
    fly = fly_client()
    with pytest.raises(PermanentAPIError):
        fly.create_app(demo.PRODUCTION_FLY_APP, demo.FLY_ORG)
    response = httpx.Client(transport=SandboxTransport(app=sandbox.app)).post(
        "http://sandbox.test/fly/v1/apps",
        json={"app_name": demo.PRODUCTION_FLY_APP, "org_slug": demo.FLY_ORG},
        headers={"Authorization": "Bearer t"},
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": "Validation failed: Name has already been taken",
        "status": "name_taken",
    }
