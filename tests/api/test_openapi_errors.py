"""The OpenAPI schema lists every error the API answers, and only those.

* Every (operation, status, code) the schema documents is provoked here, and the answer is
  validated against the schema by the ``api`` fixture (an undocumented status or code fails).
* Every ApiError a view can raise, and every service refusal it lets through to
  ``api_endpoint`` (read from the views' source, with the codes of the service refusals read
  from the services), is documented for that operation at its ``refusal_status``.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.urls import resolve
from django.utils import timezone
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse

from approvals.models import ApprovalRequest
from approvals.services import DECISION_REFUSALS, approval_decide
from deployments.models import App, Environment, FreezeWindow, GitHubIdentity, Release
from deployments.services import builds as build_services
from deployments.services import deploys as deploy_services
from deployments.services import gates as gate_services
from deployments.services import requests as request_services
from deployments.services import rollbacks as rollback_services
from deployments.services.builds import build_register
from deployments.services.environments import environment_lock
from deployments.services.requests import deploy_request, deploy_request_cancel
from deployments.services.rollbacks import rollback_request
from hotdash.api import MAX_BODY_BYTES, OPENAPI_COMPONENTS, ApiError, refusal_status
from hotdash.api_urls import API_MODULES
from hotdash.errors import Refused
from hotdash.sandbox.github import user as sandbox_user

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
PATHS = {
    path: item for name in API_MODULES for path, item in import_module(name).OPENAPI_PATHS.items()
}
OPERATIONS = {
    operation["operationId"]: (path, method)
    for path, item in PATHS.items()
    for method, operation in item.items()
}


def _documented_codes(response: dict[str, Any]) -> list[str]:
    if "$ref" in response:
        response = OPENAPI_COMPONENTS["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    return schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]


DOCUMENTED = {
    (operation_id, int(status), code)
    for operation_id, (path, method) in OPERATIONS.items()
    for status, response in PATHS[path][method]["responses"].items()
    if int(status) >= 400
    for code in _documented_codes(response)
}


# --- provoking each error -------------------------------------------------------------------

REQUEST = {"app": "hot-dash", "environment": "production", "version": "1.3.0", "reason": "ship"}
BUILD = {
    "app": "hot-dash",
    "sha": "a" * 40,
    "image": "registry.fly.io/hot-dash:a",
    "digest": "sha256:" + "b" * 64,
}


@dataclass
class World:
    api: Callable
    demo: Any
    sandbox: Any
    requester: Any
    approver: Any
    second_approver: Any
    viewer: Any
    admin_user: Any
    outsider: Any

    def call(
        self,
        operation_id: str,
        user,
        body=None,
        *,
        method=None,
        raw=None,
        authorization=None,
        query="",
        **params,
    ) -> Any:
        """Call an operation, its path parameters filled from ``params`` (default: the demo
        app, a pending deploy), with ``query`` as its query string."""
        path, documented_method = OPERATIONS[operation_id]
        if "{id}" in path and "id" not in params:
            params["id"] = self.pending()
        params.setdefault("app", self.demo.name)
        concrete = re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), path)
        concrete += f"?{query}" if query else ""
        return self.api(
            user, method or documented_method, concrete, body, raw=raw, authorization=authorization
        )

    def pending(self, requester=None) -> int:
        """A production deploy of v1.3.0 awaiting approval."""
        response = self.api(requester or self.requester, "post", "/deploys", REQUEST)
        assert response.status_code == 201, response.content
        return response.json()["id"]

    @property
    def v130(self) -> Release:
        return self.demo.releases.get(version="1.3.0")


Case = Callable[[World], Any]  # returns a response or a list of responses
CASES: dict[tuple[str, int, str], Case] = {}


def case(operation_id: str, status: int, code: str) -> Callable[[Case], Case]:
    def register(provoke: Case) -> Case:
        CASES[(operation_id, status, code)] = provoke
        return provoke

    return register


def _plumbing_case(operation_id: str, status: int, code: str) -> Case | None:
    """The errors api_endpoint and json_body answer the same way on every operation."""
    path, method = OPERATIONS[operation_id]
    if code == "unauthenticated":
        return lambda w: [
            w.call(operation_id, None),
            w.call(operation_id, None, authorization="Bearer hd_not-a-token"),
            w.call(operation_id, None, authorization="Token whatever"),
        ]
    if code == "method_not_allowed":
        return lambda w: [
            w.call(operation_id, w.admin_user, method=other)
            for other in HTTP_METHODS
            if other not in PATHS[path]
        ]
    if code == "invalid_json":
        deep = b"[" * 65 + b"]" * 65
        return lambda w: [
            w.call(operation_id, w.admin_user, raw=raw)
            for raw in (b"{nope", b"[1]", b"\xff", deep, b'{"a": NaN}', b'{"a": 1e999}')
        ]
    if code == "invalid_text":
        hostile = [b'{"reason": "a\\u0000b"}', b'{"reason": "a\\udc80b"}', b'{"a\\u0000": 1}']
        return lambda w: [
            w.call(operation_id, w.admin_user, query="note=a%00b"),
            *(
                w.call(operation_id, w.admin_user, raw=raw)
                for raw in (hostile if "requestBody" in PATHS[path][method] else [])
            ),
        ]
    if code == "throttled":

        def locked_out(w):
            params = {"id": w.pending()} if "{id}" in path else {}
            for _ in range(settings.LOGIN_THROTTLE_IP_LIMIT):
                w.call(operation_id, None, authorization="Bearer hd_guessing", **params)
            return w.call(operation_id, None, authorization="Bearer hd_guessing", **params)

        return locked_out
    if code == "body_too_large":
        return lambda w: w.call(operation_id, w.admin_user, raw=b" " * (MAX_BODY_BYTES + 1))
    return None


# POST /deploys


@case("deploys_list", 403, "forbidden")
def _(w):
    return w.call("deploys_list", w.outsider)


@case("deploys_list", 422, "invalid_field")
def _(w):
    return [
        w.call("deploys_list", w.viewer, query="state=bogus"),
        w.call("deploys_list", w.viewer, query="since=2026-13-01"),
        w.call("deploys_list", w.viewer, query="before=0"),
        w.call("deploys_list", w.viewer, query="since=2026-02-01&until=2026-01-01"),
    ]


@case("deploys_create", 403, "forbidden")
def _(w):
    return w.call("deploys_create", w.viewer, REQUEST)


@case("deploys_create", 404, "unknown_environment")
def _(w):
    return w.call("deploys_create", w.requester, {**REQUEST, "environment": "moon"})


@case("deploys_create", 404, "unknown_release")
def _(w):
    return w.call("deploys_create", w.requester, {**REQUEST, "version": "v9.9.9"})


@case("deploys_create", 409, "environment_locked")
def _(w):
    production = w.demo.environments.get(name="production")
    environment_lock(environment=production, actor=w.admin_user, reason="incident")
    return w.call("deploys_create", w.requester, REQUEST)


@case("deploys_create", 409, "freeze_window")
def _(w):
    now = timezone.now()
    FreezeWindow.objects.create(
        environment=w.demo.environments.get(name="production"),
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        reason="Black Friday",
    )
    return w.call("deploys_create", w.requester, REQUEST)


@case("deploys_create", 409, "checks_failing")
def _(w):
    w.sandbox.set_check(w.v130.commit_sha, "test-unit", "completed", "failure")
    return w.call("deploys_create", w.requester, REQUEST)


@case("deploys_create", 409, "promotion_required")
def _(w):
    return w.call("deploys_create", w.requester, {**REQUEST, "version": "v1.1.0"})


@case("deploys_create", 409, "no_op_unconfirmed")
def _(w):
    return w.call("deploys_create", w.requester, {**REQUEST, "version": "v1.2.0"})


@case("deploys_create", 422, "missing_fields")
def _(w):
    # A blank reason is a missing field here, before the service's reason_required.
    return [
        w.call("deploys_create", w.requester, {"app": "hot-dash"}),
        w.call("deploys_create", w.requester, {**REQUEST, "reason": "   "}),
    ]


@case("deploys_create", 422, "invalid_field")
def _(w):
    return [
        w.call("deploys_create", w.requester, {**REQUEST, "app": 5}),
        w.call("deploys_create", w.requester, {**REQUEST, "overrides": "lock"}),
        w.call("deploys_create", w.requester, {**REQUEST, "confirm_no_op": "yes"}),
        w.call("deploys_create", w.requester, {**REQUEST, "reason": "x" * 2001}),
    ]


@case("deploys_create", 422, "invalid_override")
def _(w):
    body = {**REQUEST, "overrides": ["lock"], "override_reason": "hotfix"}
    return w.call("deploys_create", w.requester, body)


@case("deploys_create", 422, "release_invalid")
def _(w):
    Release.objects.filter(pk=w.v130.pk).update(validation=Release.Validation.INVALID)
    return w.call("deploys_create", w.requester, REQUEST)


@case("deploys_create", 422, "release_bad")
def _(w):
    Release.objects.filter(pk=w.v130.pk).update(bad_marked_at=timezone.now(), bad_reason="500s")
    return w.call("deploys_create", w.requester, REQUEST)


@case("deploys_create", 422, "release_deleted")
def _(w):
    Release.objects.filter(pk=w.v130.pk).update(deleted_on_github_at=timezone.now())
    return w.call("deploys_create", w.requester, REQUEST)


@case("deploys_create", 502, "upstream_error")
def _(w):
    w.sandbox.add_fault("status", status=503, service="fly")
    return w.call("deploys_create", w.requester, REQUEST)


# POST /rollbacks

ROLLBACK = {
    "app": "hot-dash",
    "environment": "production",
    "version": "1.1.1",
    "reason": "5xx after 1.2.0",
    "confirm": "hot-dash",
}
EMERGENCY = {**ROLLBACK, "emergency": True}


def _production_in_trouble(w) -> None:
    w.demo.environments.filter(name="production").update(health=Environment.Health.FAILING)


@case("rollbacks_create", 403, "forbidden")
def _(w):
    return w.call("rollbacks_create", w.viewer, ROLLBACK)


@case("rollbacks_create", 403, "not_approver")
def _(w):
    _production_in_trouble(w)
    return w.call("rollbacks_create", w.requester, EMERGENCY)


@case("rollbacks_create", 404, "unknown_environment")
def _(w):
    return w.call("rollbacks_create", w.approver, {**ROLLBACK, "environment": "moon"})


@case("rollbacks_create", 404, "unknown_release")
def _(w):
    return w.call("rollbacks_create", w.approver, {**ROLLBACK, "version": "v9.9.9"})


@case("rollbacks_create", 409, "environment_locked")
def _(w):
    production = w.demo.environments.get(name="production")
    environment_lock(environment=production, actor=w.admin_user, reason="incident")
    return w.call("rollbacks_create", w.approver, ROLLBACK)


@case("rollbacks_create", 409, "freeze_window")
def _(w):
    now = timezone.now()
    FreezeWindow.objects.create(
        environment=w.demo.environments.get(name="production"),
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        reason="Black Friday",
    )
    return w.call("rollbacks_create", w.approver, ROLLBACK)


@case("rollbacks_create", 409, "checks_failing")
def _(w):
    target = w.demo.releases.get(version="1.1.1")
    w.sandbox.set_check(target.commit_sha, "test-unit", "completed", "failure")
    return w.call("rollbacks_create", w.approver, ROLLBACK)


@case("rollbacks_create", 409, "not_in_trouble")
def _(w):
    return w.call("rollbacks_create", w.approver, EMERGENCY)


@case("rollbacks_create", 409, "no_rollback_target")
def _(w):
    _production_in_trouble(w)
    w.demo.releases.filter(version__in=["1.0.0", "1.1.0", "1.1.1"]).update(
        bad_marked_at=timezone.now(), bad_reason="500s"
    )
    return w.call("rollbacks_create", w.approver, EMERGENCY)


@case("rollbacks_create", 422, "missing_fields")
def _(w):
    # A blank reason is a missing field here, before the service's reason_required.
    return [
        w.call("rollbacks_create", w.approver, {"app": "hot-dash"}),
        w.call("rollbacks_create", w.approver, {**ROLLBACK, "reason": "   "}),
    ]


@case("rollbacks_create", 422, "invalid_field")
def _(w):
    return [
        w.call("rollbacks_create", w.approver, {**ROLLBACK, "app": 5}),
        w.call("rollbacks_create", w.approver, {**ROLLBACK, "emergency": "yes"}),
        w.call("rollbacks_create", w.approver, {**ROLLBACK, "confirm": "x" * 2001}),
    ]


@case("rollbacks_create", 422, "confirmation_required")
def _(w):
    return w.call("rollbacks_create", w.approver, {**ROLLBACK, "confirm": "production"})


@case("rollbacks_create", 422, "already_live")
def _(w):
    return w.call("rollbacks_create", w.approver, {**ROLLBACK, "version": "1.2.0"})


@case("rollbacks_create", 422, "invalid_target")
def _(w):
    _production_in_trouble(w)
    return w.call("rollbacks_create", w.approver, {**EMERGENCY, "version": "1.1.0"})


@case("rollbacks_create", 422, "release_invalid")
def _(w):
    w.demo.releases.filter(version="1.1.1").update(validation=Release.Validation.INVALID)
    return w.call("rollbacks_create", w.approver, ROLLBACK)


@case("rollbacks_create", 422, "release_bad")
def _(w):
    w.demo.releases.filter(version="1.1.1").update(bad_marked_at=timezone.now())
    return w.call("rollbacks_create", w.approver, ROLLBACK)


@case("rollbacks_create", 422, "release_deleted")
def _(w):
    w.demo.releases.filter(version="1.1.1").update(deleted_on_github_at=timezone.now())
    return w.call("rollbacks_create", w.approver, ROLLBACK)


@case("rollbacks_create", 502, "upstream_error")
def _(w):
    w.sandbox.add_fault("status", status=503, service="fly")
    return w.call("rollbacks_create", w.approver, ROLLBACK)


# GET /deploys/{id}


@case("deploys_get", 403, "forbidden")
def _(w):
    return w.call("deploys_get", w.outsider)


@case("deploys_get", 404, "not_found")
def _(w):
    return w.call("deploys_get", w.viewer, id=999999)


# POST /deploys/{id}/decisions

APPROVE = {"decision": "approve"}


@case("deploys_decide", 403, "not_approver")
def _(w):
    return [
        w.call("deploys_decide", w.viewer, APPROVE),
        w.call("deploys_decide", w.outsider, APPROVE),
    ]


@case("deploys_decide", 403, "self_approval")
def _(w):
    return w.call("deploys_decide", w.approver, APPROVE, id=w.pending(requester=w.approver))


@case("deploys_decide", 403, "commit_author")
def _(w):
    # The approver signs in with GitHub as carol, who wrote a commit of v1.3.0.
    GitHubIdentity.objects.create(
        user=w.approver, github_id=sandbox_user("", "carol")["id"], login="carol"
    )
    App.objects.filter(pk=w.demo.pk).update(commit_authors_are_requesters=True)
    return w.call("deploys_decide", w.approver, APPROVE)


@case("deploys_decide", 404, "not_found")
def _(w):
    return w.call("deploys_decide", w.approver, APPROVE, id=999999)


@case("deploys_decide", 409, "not_gated")
def _(w):
    again = {**REQUEST, "environment": "staging", "confirm_no_op": True}  # staging runs v1.3.0
    staging = w.call("deploys_create", w.requester, again)
    assert staging.json()["approval"] is None
    return w.call("deploys_decide", w.approver, APPROVE, id=staging.json()["id"])


@case("deploys_decide", 409, "closed")
def _(w):
    deploy_id = w.pending()
    assert w.call("deploys_decide", w.approver, APPROVE, id=deploy_id).status_code == 201
    return w.call("deploys_decide", w.second_approver, APPROVE, id=deploy_id)


@case("deploys_decide", 409, "already_decided")
def _(w):
    w.demo.environments.filter(name="production").update(approvals_required=2)
    deploy_id = w.pending()
    assert w.call("deploys_decide", w.approver, APPROVE, id=deploy_id).status_code == 201
    return w.call("deploys_decide", w.approver, APPROVE, id=deploy_id)


@case("deploys_decide", 409, "expired")
def _(w):
    deploy_id = w.pending()
    ApprovalRequest.objects.filter(deploy_id=deploy_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    return w.call("deploys_decide", w.approver, APPROVE, id=deploy_id)


@case("deploys_decide", 409, "changed")
def _(w):
    deploy_id = w.pending()
    Release.objects.filter(pk=w.v130.pk).update(artifact_sha256="f" * 64)
    return w.call("deploys_decide", w.approver, APPROVE, id=deploy_id)


@case("deploys_decide", 422, "missing_fields")
def _(w):
    return w.call("deploys_decide", w.approver, {})


@case("deploys_decide", 422, "invalid_field")
def _(w):
    # An unknown decision is refused here, before the service's invalid_verdict.
    return [
        w.call("deploys_decide", w.approver, {"decision": "maybe"}),
        w.call("deploys_decide", w.approver, {"decision": "approve", "comment": 5}),
    ]


@case("deploys_decide", 422, "comment_required")
def _(w):
    return w.call("deploys_decide", w.approver, {"decision": "reject", "comment": " "})


# POST /deploys/{id}/cancel


@case("deploys_cancel", 403, "forbidden")
def _(w):
    return w.call("deploys_cancel", w.viewer, {"reason": "no"})


@case("deploys_cancel", 404, "not_found")
def _(w):
    return w.call("deploys_cancel", w.requester, {"reason": "no"}, id=999999)


@case("deploys_cancel", 409, "not_cancellable")
def _(w):
    deploy_id = w.pending()
    assert w.call("deploys_cancel", w.requester, {"reason": "a"}, id=deploy_id).status_code == 200
    return w.call("deploys_cancel", w.requester, {"reason": "again"}, id=deploy_id)


@case("deploys_cancel", 422, "missing_fields")
def _(w):
    return [
        w.call("deploys_cancel", w.requester, {}),
        w.call("deploys_cancel", w.requester, {"reason": "  "}),
    ]


@case("deploys_cancel", 422, "invalid_field")
def _(w):
    return w.call("deploys_cancel", w.requester, {"reason": 5})


# POST /builds


@case("builds_create", 403, "forbidden")
def _(w):
    return w.call("builds_create", w.viewer, BUILD)


@case("builds_create", 404, "unknown_app")
def _(w):
    return w.call("builds_create", w.requester, {**BUILD, "app": "nope"})


@case("builds_create", 409, "build_conflict")
def _(w):
    assert w.call("builds_create", w.requester, BUILD).status_code == 201
    return w.call("builds_create", w.requester, {**BUILD, "image": "registry.fly.io/hot-dash:b"})


@case("builds_create", 422, "missing_fields")
def _(w):
    return w.call("builds_create", w.requester, {**BUILD, "digest": ""})


@case("builds_create", 422, "invalid_field")
def _(w):
    return w.call("builds_create", w.requester, {**BUILD, "sha": 5})


@case("builds_create", 422, "invalid_sha")
def _(w):
    return w.call("builds_create", w.requester, {**BUILD, "sha": "abc1234"})


@case("builds_create", 422, "invalid_image")
def _(w):
    return w.call("builds_create", w.requester, {**BUILD, "image": "two words"})


@case("builds_create", 422, "invalid_digest")
def _(w):
    return w.call("builds_create", w.requester, {**BUILD, "digest": "md5:abc"})


# GET /apps/{app}/releases


@case("listAppReleases", 403, "forbidden")
def _(w):
    return w.call("listAppReleases", w.outsider)


@case("listAppReleases", 404, "unknown_app")
def _(w):
    return w.call("listAppReleases", w.viewer, app="nope")


@pytest.fixture
def world(
    api, demo, sandbox, requester, approver, second_approver, viewer, admin_user, outsider
) -> World:
    return World(
        api, demo, sandbox, requester, approver, second_approver, viewer, admin_user, outsider
    )


@pytest.mark.parametrize("operation_id, status, code", sorted(DOCUMENTED | set(CASES)))
def test_each_error_is_answered_as_documented(world, operation_id, status, code):
    provoke = CASES.get((operation_id, status, code)) or _plumbing_case(operation_id, status, code)
    assert provoke, f"nothing here provokes {status} {code} from {operation_id}: add a case"
    responses = provoke(world)
    responses = responses if isinstance(responses, list) else [responses]
    assert responses
    for response in responses:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    if status == 405:
        path, _ = OPERATIONS[operation_id]
        assert {r["Allow"] for r in responses} == {", ".join(m.upper() for m in PATHS[path])}
    if status == 401:
        assert all(r["WWW-Authenticate"] == 'Bearer realm="hotdash"' for r in responses)
    # ``(operation_id, status, code)`` not being documented made ``api`` fail already; this
    # makes the claim explicit.
    assert (operation_id, status, code) in DOCUMENTED


@pytest.mark.parametrize(
    "status, code, headers",
    [
        (404, "unknown_app", {}),  # a documented status with another operation's code
        (418, "teapot", {}),  # an undocumented status
        (401, "unauthenticated", {}),  # without its documented WWW-Authenticate header
    ],
)
def test_the_validator_rejects_what_the_schema_does_not_list(client, db, status, code, headers):
    spec = OpenAPI.from_dict(client.get("/api/v1/openapi.json").json())
    request = MockRequest("http://testserver", "get", "/api/v1/deploys/1")

    def validate(status, code, headers):
        body = json.dumps({"error": {"code": code, "message": "m"}}).encode()
        spec.validate_response(request, MockResponse(body, status_code=status, headers=headers))

    validate(404, "not_found", {})
    validate(401, "unauthenticated", {"WWW-Authenticate": "Bearer"})
    with pytest.raises(OpenAPIError):
        validate(status, code, headers)


# --- reading the errors out of the code --------------------------------------------------------


def _codes_constructed(module, function: str | None = None) -> set[str]:
    """The literal codes ``Refused("code", …)`` is built with in ``module`` (or in one of
    its functions)."""
    tree = ast.parse(inspect.getsource(getattr(module, function) if function else module))
    built = [
        node.args[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == Refused.__name__
    ]
    assert all(isinstance(code, ast.Constant) for code in built), "a computed code: list it"
    return {code.value for code in built}


# The codes each service an API view calls may refuse with.
REFUSALS: dict[Callable, set[str]] = {
    deploy_request: _codes_constructed(request_services) | _codes_constructed(gate_services),
    # The API only decides (a bypass is drawer-only).
    approval_decide: set(DECISION_REFUSALS),
    build_register: _codes_constructed(build_services),
    # A rollback takes no overrides, has no promotion rule (it goes back to what ran) and no
    # no-op check (it always goes back to an earlier release).
    rollback_request: _codes_constructed(rollback_services, "rollback_request")
    | _codes_constructed(rollback_services, "emergency_rollback_refusal")
    | (_codes_constructed(request_services) | _codes_constructed(gate_services))
    - {"invalid_override", "promotion_required", "no_op_unconfirmed"},
    # deploy_request_cancel's only refusal comes from deploy_cancel.
    deploy_request_cancel: _codes_constructed(deploy_services, "deploy_cancel"),
}

# Codes a view can pass on that its own checks answer first (cases above show which answer).
PRE_EMPTED = {
    ("deploys_create", 422, "reason_required"),  # a blank reason is missing_fields
    ("deploys_decide", 422, "invalid_verdict"),  # an unknown decision is invalid_field
    ("rollbacks_create", 422, "reason_required"),  # a blank reason is missing_fields
}


def _api_errors(function, seen: set) -> set[tuple[int, str]]:
    """Every (status, code) an ApiError raised in ``function`` or the API helpers it calls
    can carry, and every refusal of a service it calls that reaches ``api_endpoint``."""
    seen.add(function)
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        target = function.__globals__.get(node.func.id)
        if target is ApiError:
            found |= _api_error_args(node, parents, function.__globals__)
        elif target in REFUSALS and _caught_by(node, parents) is None:
            found |= {(refusal_status(code), code) for code in REFUSALS[target]}
        elif (
            inspect.isfunction(target)
            and target.__module__ in ("hotdash.api", *API_MODULES)
            and target not in seen
        ):
            found |= _api_errors(target, seen)
    return found


def _caught_by(node: ast.AST, parents: dict) -> ast.Try | None:
    """The ``try`` around ``node`` whose handler catches Refused, if any."""
    while node in parents:
        parent = parents[node]
        catches = isinstance(parent, ast.Try) and any(
            getattr(h.type, "id", "") == Refused.__name__ for h in parent.handlers
        )
        if catches and node in parent.body:
            return parent
        node = parent
    return None


def _api_error_args(node: ast.Call, parents: dict, scope: dict) -> set[tuple[int, str]]:
    status, code = node.args[:2]
    if isinstance(status, ast.Constant) and isinstance(code, ast.Constant):
        return {(status.value, code.value)}
    handler = node
    while not isinstance(handler, ast.ExceptHandler):
        handler = parents[handler]  # KeyError: a computed ApiError outside an except clause
    assert scope[handler.type.id] is Refused, "a computed ApiError from another exception"
    calls = [
        scope.get(call.func.id)
        for statement in parents[handler].body
        for call in ast.walk(statement)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
    ]
    services = [call for call in calls if call in REFUSALS]
    assert services, "teach REFUSALS the codes of the service called in this try"
    codes = set().union(*(REFUSALS[service] for service in services))

    def evaluate(expression: ast.expr, refusal: Exception) -> Any:
        compiled = compile(ast.Expression(expression), "<view>", "eval")
        return eval(compiled, scope, {handler.name: refusal})  # noqa: S307 - our own source

    return {(evaluate(status, Refused(c, "")), evaluate(code, Refused(c, ""))) for c in codes}


def _view(operation_id: str) -> Callable:
    """The view behind an operation (a path serving two methods names one per method)."""
    path, method = OPERATIONS[operation_id]
    view = resolve("/api/v1" + re.sub(r"\{\w+\}", "1", path)).func
    return inspect.unwrap(getattr(view, "by_method", {}).get(method.upper(), view))


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_every_error_the_view_can_raise_is_documented(operation_id):
    raised = {
        (status, code)
        for status, code in _api_errors(_view(operation_id), set())
        if (operation_id, status, code) not in PRE_EMPTED
    }
    documented = {(status, code) for op, status, code in DOCUMENTED if op == operation_id}
    assert raised - documented == set()
    # What api_endpoint and the input gate's middleware answer, before the view runs.
    plumbing = {
        (400, "invalid_text"),
        (401, "unauthenticated"),
        (405, "method_not_allowed"),
        (429, "throttled"),
    }
    assert plumbing <= documented
    # Nothing documented that the code cannot answer (and PRE_EMPTED is not stale).
    assert documented - raised == plumbing - raised


def test_pre_empted_codes_are_really_passed_on():
    for operation_id, status, code in PRE_EMPTED:
        assert (status, code) in _api_errors(_view(operation_id), set())
