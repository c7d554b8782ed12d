"""``/api/v1/deploys``: list the history (filtered, keyset-paged), request a deploy, read it,
decide its approval, cancel it; ``/api/v1/rollbacks``: request a rollback (or an emergency one).

The same services and policy as the pages: a refusal is ``{"error": {"code", "message",
"details"}}`` with the refusal's code (e.g. ``environment_locked``, ``self_approval``).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from approvals import policy
from approvals.models import ApprovalRequest, Decision
from approvals.selectors import approval_bypass_of, approval_gate, approver_candidates
from approvals.services import approval_decide
from deployments.models import Deploy, Environment, Release
from deployments.selectors.deploy_history import (
    FILTER_FIELDS,
    PAGE_SIZE,
    DeployFilterForm,
    HistoryRow,
    deploy_history_page,
)
from deployments.selectors.deploys import deploy_get
from deployments.services.requests import deploy_request, deploy_request_cancel
from deployments.services.rollbacks import rollback_request
from hotdash.api import (
    ApiError,
    api_endpoint,
    error_responses,
    json_body,
    refusal_status,
    require_fields,
)
from hotdash.errors import Refused
from hotdash.input_gate import parse_id
from hotdash.permissions import client_ip

MAX_TEXT = 2000


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(422, "invalid_field", f"{name} must be a string.")
    if len(value) > MAX_TEXT:
        raise ApiError(422, "invalid_field", f"{name} is longer than {MAX_TEXT} characters.")
    if required and not value.strip():
        raise ApiError(422, "missing_fields", f"Missing required field(s): {name}.")
    return value


def _approval_json(approval: ApprovalRequest) -> dict[str, Any]:
    decisions = list(approval.decisions.select_related("user"))
    pending = approval.state == ApprovalRequest.State.PENDING
    gate = approval_gate(
        approval=approval,
        decisions=decisions,
        candidates=approver_candidates() if pending else [],
    )
    bypass = approval_bypass_of(approval)
    return {
        "id": approval.pk,
        "state": approval.state,
        "required": approval.approvals_required,
        "approvals": sum(d.verdict == Decision.Verdict.APPROVE for d in decisions),
        "expires_at": approval.expires_at.isoformat(),
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        "decisions": [
            {
                "user": d.user.get_username(),
                "decision": d.verdict,
                "comment": d.comment,
                "at": d.created_at.isoformat(),
            }
            for d in decisions
        ],
        "eligible_approvers": [user.get_username() for user in gate.eligible],
        "unsatisfiable": gate.unsatisfiable,
        "bypass": {"by": bypass.who, "reason": bypass.comment} if bypass else None,
    }


def _hold_json(deploy: Deploy) -> dict[str, Any] | None:
    hold = deploy.rollback_hold
    if hold is None:
        return None
    return {
        "environment": hold.environment,
        "marks_bad": hold.marks_bad or None,
        "applied": hold.applied,
        "summary": hold.summary,
    }


def _identity_json(deploy: Deploy) -> dict[str, Any]:
    return {
        "id": deploy.pk,
        "app": deploy.environment.app.name,
        "environment": deploy.environment.name,
        "kind": deploy.kind,
        "state": deploy.state,
        "version": deploy.release.version if deploy.release else None,
        "image_ref": deploy.image_ref,
    }


def deploy_json(deploy: Deploy) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    approval = ApprovalRequest.objects.filter(deploy=deploy).first()
    return {
        **_identity_json(deploy),
        "image_digest": deploy.image_digest,
        "artifact_sha256": deploy.artifact_sha256,
        "commit_sha": deploy.commit_sha,
        "previous_version": deploy.previous_release.version if deploy.previous_release else None,
        "requested_by": deploy.requester_name,
        "reason": deploy.reason,
        "overrides": deploy.overrides,
        "override_reason": deploy.override_reason,
        "fast_path": deploy.fast_path,
        "emergency": deploy.emergency,
        "superseded_by": deploy.superseded_by_id,
        "rollback_hold": _hold_json(deploy),
        "error": deploy.error,
        "created_at": iso(deploy.created_at),
        "queued_at": iso(deploy.queued_at),
        "started_at": iso(deploy.started_at),
        "finished_at": iso(deploy.finished_at),
        "plan": [
            {
                "position": step.position,
                "kind": step.kind,
                "title": step.title,
                "state": step.state,
                "machines": step.data.get("machines", []),
                "create": step.data.get("create", 0),
            }
            for step in deploy.steps.all()
        ],
        "approval": _approval_json(approval) if approval else None,
    }


def _deploy_for(pk: str) -> Deploy:
    """The deploy whose id is the URL's ``pk`` (any text: a non-id is a 404 like a missing one)."""
    number = parse_id(pk)
    deploy = Deploy.objects.filter(pk=number).first() if number else None
    if deploy is None:
        raise ApiError(404, "not_found", f"No deploy #{pk[:30]!r}.")
    return deploy_get(pk=deploy.pk)


def _history_json(row: HistoryRow) -> dict[str, Any]:
    return {
        "id": row.pk,
        "app": row.app_name,
        "environment": row.environment_name,
        "kind": row.kind,
        "state": row.state,
        "version": row.release_version,
        "image_ref": row.image_ref,
        "requested_by": row.requester_name,
        "approved_by": row.approvers,
        "created_at": row.created_at.isoformat(),
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "error": row.error,
    }


def deploys_list(request: HttpRequest) -> JsonResponse:
    """The deploy history, newest first, with the deploy page's filters."""
    if not policy.can_view(request.user):
        raise ApiError(403, "forbidden", "Reading deploys needs the viewer role.")
    form = DeployFilterForm(request.GET)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise ApiError(422, "invalid_field", f"{field}: {errors[0]}")
    page = deploy_history_page(filters=form.filters(), before=form.cleaned_data["before"])
    return JsonResponse(
        {
            "deploys": [_history_json(row) for row in page.rows],
            "next_before": page.older_cursor,
        }
    )


@api_endpoint("GET", "POST")
def deploys_collection(request: HttpRequest) -> JsonResponse:
    """``GET`` lists the history, ``POST`` requests a deploy."""
    handler = deploys_collection.by_method[request.method]
    return handler(request)


def _target(data: dict[str, Any]) -> tuple[Environment, Release]:
    """The environment and release a request body names (``app``, ``environment``,
    ``version``), or a 404 naming the one that does not exist."""
    app_name, env_name, version = (_text(data, n) for n in ("app", "environment", "version"))
    environment = (
        Environment.objects.select_related("app", "current_release", "locked_by")
        .filter(app__name=app_name, name=env_name)
        .first()
    )
    if environment is None:
        raise ApiError(404, "unknown_environment", f"No environment {app_name}/{env_name}.")
    release = Release.objects.filter(app=environment.app, version=version.removeprefix("v")).first()
    if release is None:
        raise ApiError(404, "unknown_release", f"{app_name} has no release {version}.")
    return environment, release


def deploys_create(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    require_fields(data, "app", "environment", "version", "reason")
    reason = _text(data, "reason", required=True)
    overrides = data.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ApiError(422, "invalid_field", "overrides must be a list of strings.")
    confirm_no_op = data.get("confirm_no_op", False)
    if not isinstance(confirm_no_op, bool):
        raise ApiError(422, "invalid_field", "confirm_no_op must be true or false.")
    environment, release = _target(data)
    deploy = deploy_request(
        environment=environment,
        release=release,
        requested_by=request.user,
        reason=reason,
        overrides=overrides,
        override_reason=_text(data, "override_reason"),
        confirm_no_op=confirm_no_op,
        ip=client_ip(request),
    )
    return JsonResponse(deploy_json(deploy_get(pk=deploy.pk)), status=201)


# The operation behind each method (the OpenAPI tests read it to check each one's errors).
deploys_collection.by_method = {"GET": deploys_list, "POST": deploys_create}


@api_endpoint("POST")
def rollbacks_create(request: HttpRequest) -> JsonResponse:
    """Roll back, as the rollback form and ``manage.py rollback`` do (same service, rules and
    confirmation: ``confirm`` is the app name, for production and every emergency)."""
    data = json_body(request)
    require_fields(data, "app", "environment", "version", "reason")
    reason = _text(data, "reason", required=True)
    emergency = data.get("emergency", False)
    if not isinstance(emergency, bool):
        raise ApiError(422, "invalid_field", "emergency must be true or false.")
    environment, release = _target(data)
    deploy = rollback_request(
        environment=environment,
        release=release,
        requested_by=request.user,
        reason=reason,
        confirmation=_text(data, "confirm"),
        emergency=emergency,
        ip=client_ip(request),
    )
    return JsonResponse(deploy_json(deploy_get(pk=deploy.pk)), status=201)


@api_endpoint("GET")
def deploys_get(request: HttpRequest, pk: str) -> JsonResponse:
    if not policy.can_view(request.user):
        raise ApiError(403, "forbidden", "Reading deploys needs the viewer role.")
    return JsonResponse(deploy_json(_deploy_for(pk)))


@api_endpoint("POST")
def deploys_decide(request: HttpRequest, pk: str) -> JsonResponse:
    deploy = _deploy_for(pk)
    data = json_body(request)
    require_fields(data, "decision")
    verdict = _text(data, "decision")
    if verdict not in Decision.Verdict.values:
        raise ApiError(422, "invalid_field", "decision must be approve or reject.")
    approval = ApprovalRequest.objects.filter(deploy=deploy).first()
    if approval is None:
        raise ApiError(409, "not_gated", f"Deploy #{deploy.pk} has no approval request.")
    try:
        approval_decide(
            request=approval,
            user=request.user,
            verdict=verdict,
            comment=_text(data, "comment"),
            ip=client_ip(request),
        )
    except Refused as refusal:
        raise ApiError(
            refusal_status(refusal.code),
            refusal.code,
            refusal.message,
            approval=_approval_json(ApprovalRequest.objects.get(pk=approval.pk)),
        ) from None
    return JsonResponse(deploy_json(deploy_get(pk=deploy.pk)), status=201)


@api_endpoint("POST")
def deploys_cancel(request: HttpRequest, pk: str) -> JsonResponse:
    deploy = _deploy_for(pk)
    if not policy.can_cancel(request.user, deploy):
        raise ApiError(403, "forbidden", "Only the requester or an approver may cancel.")
    reason = _text(json_body(request), "reason", required=True)
    deploy_request_cancel(deploy=deploy, actor=request.user, reason=reason, ip=client_ip(request))
    return JsonResponse(deploy_json(deploy_get(pk=deploy.pk)))


# --- OpenAPI -------------------------------------------------------------------------------

_NULLABLE_STRING = {"type": ["string", "null"]}
# What names a deploy, in the full record and in a history row alike.
_IDENTITY = {
    "id": {"type": "integer"},
    "app": {"type": "string"},
    "environment": {"type": "string"},
    "kind": {"type": "string", "enum": list(Deploy.Kind.values)},
    "state": {"type": "string", "enum": list(Deploy.State.values)},
    "version": _NULLABLE_STRING,
    "image_ref": {"type": "string"},
}
_DEPLOY = {
    "type": "object",
    "required": ["id", "app", "environment", "kind", "state", "plan", "approval"],
    "properties": {
        **_IDENTITY,
        "image_digest": {"type": "string"},
        "artifact_sha256": {"type": "string"},
        "commit_sha": {"type": "string"},
        "previous_version": _NULLABLE_STRING,
        "requested_by": {"type": "string"},
        "reason": {"type": "string"},
        "overrides": {"type": "array", "items": {"type": "string"}},
        "override_reason": {"type": "string"},
        "fast_path": {
            "type": "boolean",
            "description": "A rollback that needed no approval (an approver's fast path).",
        },
        "emergency": {
            "type": "boolean",
            "description": "An emergency rollback: one batch, no verification window.",
        },
        "superseded_by": {"type": ["integer", "null"]},
        "rollback_hold": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "description": "A person's rollback locks its environment and marks the "
                    "release it rolls away from bad as it starts, never before.",
                    "required": ["environment", "marks_bad", "applied", "summary"],
                    "properties": {
                        "environment": {"type": "string"},
                        "marks_bad": _NULLABLE_STRING,
                        "applied": {"type": "boolean", "description": "It started: both done."},
                        "summary": {
                            "type": "string",
                            "description": 'e.g. "Will lock production and mark v1.2.0 bad '
                            'when approved."',
                        },
                    },
                },
            ]
        },
        "error": {"type": "string"},
        "created_at": _NULLABLE_STRING,
        "queued_at": _NULLABLE_STRING,
        "started_at": _NULLABLE_STRING,
        "finished_at": _NULLABLE_STRING,
        "plan": {
            "type": "array",
            "description": "The ordered steps the worker runs, visible before approval.",
            "items": {
                "type": "object",
                "required": ["position", "kind", "title", "state"],
                "properties": {
                    "position": {"type": "integer"},
                    "kind": {"type": "string"},
                    "title": {"type": "string"},
                    "state": {"type": "string"},
                    "machines": {"type": "array", "items": {"type": "string"}},
                    "create": {"type": "integer"},
                },
            },
        },
        "approval": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["id", "state", "required", "approvals", "expires_at"],
                    "properties": {
                        "id": {"type": "integer"},
                        "state": {"type": "string", "enum": list(ApprovalRequest.State.values)},
                        "required": {"type": "integer"},
                        "approvals": {"type": "integer"},
                        "expires_at": {"type": "string"},
                        "decided_at": _NULLABLE_STRING,
                        "decisions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "user": {"type": "string"},
                                    "decision": {"type": "string", "enum": ["approve", "reject"]},
                                    "comment": {"type": "string"},
                                    "at": {"type": "string"},
                                },
                            },
                        },
                        "eligible_approvers": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Who can still approve (pending requests only).",
                        },
                        "unsatisfiable": {
                            "type": "string",
                            "description": "Why nobody can satisfy the pending request, e.g. "
                            '"No eligible approver (requester excluded)"; empty when someone can.',
                        },
                        "bypass": {
                            "oneOf": [
                                {"type": "null"},
                                {
                                    "type": "object",
                                    "description": "An admin's break-glass bypass of the gate.",
                                    "required": ["by", "reason"],
                                    "properties": {
                                        "by": {"type": "string"},
                                        "reason": {"type": "string"},
                                    },
                                },
                            ]
                        },
                    },
                },
            ]
        },
    },
}
_JSON_DEPLOY = {"content": {"application/json": {"schema": _DEPLOY}}}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
# What a client can do next with a deploy it just created (OpenAPI links on the 201).
_CREATED_DEPLOY_LINKS = {
    name: {"operationId": operation, "parameters": {"id": "$response.body#/id"}}
    for name, operation in (
        ("GetDeploy", "deploys_get"),
        ("DecideDeploy", "deploys_decide"),
        ("CancelDeploy", "deploys_cancel"),
    )
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


# A string the view refuses when absent or blank, and one it takes blank (at most MAX_TEXT).
_REQUIRED_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": r"\S"}
_TEXT = {"type": "string", "maxLength": MAX_TEXT}
_NOT_FOUND = {"not_found": "no deploy has this id"}
_MISSING = {"missing_fields": "a required field is absent or blank"}
_INVALID = {"invalid_field": f"a field has the wrong type or exceeds {MAX_TEXT} characters"}

_HISTORY_ROW = {
    "type": "object",
    "required": [
        "id",
        "app",
        "environment",
        "kind",
        "state",
        "version",
        "requested_by",
        "approved_by",
        "created_at",
    ],
    "properties": {
        **_IDENTITY,
        "requested_by": {"type": "string"},
        "approved_by": {"type": "array", "items": {"type": "string"}},
        "created_at": {"type": "string"},
        "started_at": _NULLABLE_STRING,
        "finished_at": _NULLABLE_STRING,
        "error": {"type": "string"},
    },
}
_FILTER_DOCS = {
    "app": "App name",
    "environment": "Environment name",
    "kind": "One of: " + ", ".join(Deploy.Kind.values),
    "state": "One of: " + ", ".join(Deploy.State.values),
    "requester": "Username, or system/github/worker",
    "approver": "Username of someone who approved it",
    "version": "1.2.0 or v1.2.0",
    "since": "Requested on or after this day (YYYY-MM-DD, UTC)",
    "until": "Requested on or before this day (YYYY-MM-DD, UTC)",
}
_HISTORY_PARAMETERS = [
    *(
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": _FILTER_DOCS[name],
            "schema": {"type": "string"},
        }
        for name in FILTER_FIELDS
    ),
    {
        "name": "before",
        "in": "query",
        "required": False,
        "description": "Cursor: the next_before of the previous page",
        "schema": {"type": "string"},
    },
]

OPENAPI_PATHS = {
    "/deploys": {
        "get": {
            "summary": f"The deploy history, newest first, {PAGE_SIZE} a page, filtered",
            "operationId": "deploys_list",
            "parameters": _HISTORY_PARAMETERS,
            "responses": {
                "200": {
                    "description": "One page; pass next_before as ?before= for the next",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["deploys", "next_before"],
                                "properties": {
                                    "deploys": {"type": "array", "items": _HISTORY_ROW},
                                    "next_before": {"type": ["integer", "null"]},
                                },
                            }
                        }
                    },
                },
                **error_responses(
                    {
                        403: {"forbidden": "the token's user has no role"},
                        422: {"invalid_field": "a filter or the cursor is not valid"},
                    }
                ),
            },
        },
        "post": {
            "summary": "Request a deploy of a release to an environment",
            "operationId": "deploys_create",
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["app", "environment", "version", "reason"],
                    "properties": {
                        "app": _REQUIRED_TEXT,
                        "environment": _REQUIRED_TEXT,
                        "version": {**_REQUIRED_TEXT, "description": "1.2.0 or v1.2.0"},
                        "reason": _REQUIRED_TEXT,
                        "overrides": {
                            "type": "array",
                            "items": {"type": "string", "enum": sorted(policy.OVERRIDABLE)},
                            "description": "Admins only, with override_reason",
                        },
                        "override_reason": _TEXT,
                        "confirm_no_op": {
                            "type": "boolean",
                            "default": False,
                            "description": "true to request a deploy of the release that is "
                            "already live (or will be when it starts): it changes nothing",
                        },
                    },
                }
            ),
            "responses": {
                "201": {
                    "description": "Created: awaiting approval or queued",
                    **_JSON_DEPLOY,
                    "links": _CREATED_DEPLOY_LINKS,
                },
                **error_responses(
                    {
                        403: {"forbidden": "the token's user may not request deploys"},
                        404: {
                            "unknown_environment": "no such app/environment",
                            "unknown_release": "the app has no such release",
                        },
                        409: {
                            "environment_locked": "details: locked_by, lock_reason, locked_at",
                            "freeze_window": "details: window_reason, starts_at, ends_at",
                            "checks_failing": "details.failing: the checks that are not green",
                            "promotion_required": "the release has not run healthy long "
                            "enough on the previous environment; details: previous_environment, "
                            "min_healthy_minutes, healthy_minutes, rehearsal_deploy, "
                            "broken_by_deploy",
                            "no_op_unconfirmed": "the release is already live (or will be when "
                            "it starts) and confirm_no_op is not true",
                        },
                        422: {
                            **_MISSING,
                            **_INVALID,
                            "invalid_override": "an unknown override, a non-admin overriding, "
                            "or no override_reason",
                            "release_invalid": "the release failed validation (details say why)",
                            "release_bad": "the release is marked bad",
                            "release_deleted": "the release was deleted on GitHub",
                        },
                        502: {"upstream_error": "Fly or GitHub failed while planning"},
                    },
                    body=True,
                ),
            },
        },
    },
    "/rollbacks": {
        "post": {
            "summary": "Roll an environment back to a release that was live and healthy there "
            "(the rollback form's rules; emergency: all machines at once, no approval)",
            "operationId": "rollbacks_create",
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["app", "environment", "version", "reason"],
                    "properties": {
                        "app": _REQUIRED_TEXT,
                        "environment": _REQUIRED_TEXT,
                        "version": {**_REQUIRED_TEXT, "description": "1.1.1 or v1.1.1"},
                        "reason": _REQUIRED_TEXT,
                        "emergency": {
                            "type": "boolean",
                            "description": "Approvers, on an environment in trouble (health "
                            "failing or down, or a deploy failed there in the last hour), to the "
                            "last healthy release: every machine in one batch, no approval, no "
                            "verification window. Default false.",
                        },
                        "confirm": {
                            **_TEXT,
                            "description": "The app name: required for production and for "
                            "every emergency rollback",
                        },
                    },
                }
            ),
            "responses": {
                "201": {
                    "description": "Created: queued (fast path or emergency) or awaiting approval",
                    **_JSON_DEPLOY,
                    "links": _CREATED_DEPLOY_LINKS,
                },
                **error_responses(
                    {
                        403: {
                            "forbidden": "the token's user may not request rollbacks",
                            "not_approver": "an emergency rollback needs an approver",
                        },
                        404: {
                            "unknown_environment": "no such app/environment",
                            "unknown_release": "the app has no such release",
                        },
                        409: {
                            "environment_locked": "details: locked_by, lock_reason, locked_at "
                            "(an emergency rollback passes the lock)",
                            "freeze_window": "details: window_reason, starts_at, ends_at "
                            "(an emergency rollback passes freeze windows)",
                            "checks_failing": "details.failing: the checks that are not green",
                            "not_in_trouble": "emergency: the environment is healthy, up and "
                            "no deploy failed there in the last hour",
                            "no_rollback_target": "emergency: no other release was live and "
                            "healthy there",
                        },
                        422: {
                            **_MISSING,
                            "invalid_field": "a field has the wrong type (emergency not a "
                            f"boolean) or a text exceeds {MAX_TEXT} characters",
                            "confirmation_required": "confirm is not the app name (production, "
                            "or an emergency rollback)",
                            "already_live": "the release is already live there",
                            "invalid_target": "the release is not the app's, or (emergency) "
                            "not the last healthy one; details.last_healthy names it",
                            "release_invalid": "the release failed validation (details say why)",
                            "release_bad": "the release is marked bad",
                            "release_deleted": "the release was deleted on GitHub",
                        },
                        502: {"upstream_error": "Fly or GitHub failed while planning"},
                    },
                    body=True,
                ),
            },
        },
    },
    "/deploys/{id}": {
        "get": {
            "summary": "A deploy with its plan, step states and approval",
            "operationId": "deploys_get",
            "parameters": _ID,
            "responses": {
                "200": {"description": "The deploy", **_JSON_DEPLOY},
                **error_responses(
                    {403: {"forbidden": "the token's user has no role"}, 404: _NOT_FOUND}
                ),
            },
        }
    },
    "/deploys/{id}/decisions": {
        "post": {
            "summary": "Approve or reject (same policy as the drawer)",
            "operationId": "deploys_decide",
            "parameters": _ID,
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["decision"],
                    "properties": {
                        "decision": {"type": "string", "enum": ["approve", "reject"]},
                        "comment": {**_TEXT, "description": "Required to reject"},
                    },
                }
            ),
            "responses": {
                "201": {"description": "Recorded; the deploy as it is now", **_JSON_DEPLOY},
                **error_responses(
                    {
                        403: {
                            "not_approver": "the token's user is not an approver",
                            "self_approval": "the requester may not decide their own deploy",
                            "commit_author": "the token's user wrote a commit of the release",
                        },
                        404: _NOT_FOUND,
                        409: {
                            "not_gated": "the deploy has no approval request",
                            "closed": "someone decided first, or the deploy ended "
                            "(details.approval says what)",
                            "already_decided": "this user already decided",
                            "expired": "the request expired (it is now closed)",
                            "changed": "the release changed since the request (it is voided)",
                        },
                        422: {
                            **_MISSING,
                            "invalid_field": "decision is not approve or reject, or comment "
                            f"is not a string of at most {MAX_TEXT} characters",
                            "comment_required": "a rejection needs a comment",
                        },
                    },
                    body=True,
                ),
            },
        }
    },
    "/deploys/{id}/cancel": {
        "post": {
            "summary": "Cancel a deploy that has not started",
            "operationId": "deploys_cancel",
            "parameters": _ID,
            "requestBody": _body(
                {
                    "type": "object",
                    "required": ["reason"],
                    "properties": {"reason": _REQUIRED_TEXT},
                }
            ),
            "responses": {
                "200": {"description": "Cancelled", **_JSON_DEPLOY},
                **error_responses(
                    {
                        403: {"forbidden": "only the requester or an approver may cancel"},
                        404: _NOT_FOUND,
                        409: {"not_cancellable": "the deploy already started or ended"},
                        422: {**_MISSING, **_INVALID},
                    },
                    body=True,
                ),
            },
        }
    },
}
