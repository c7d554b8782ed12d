"""Where the vendored descriptions and the live services differ, in one place.

The sandbox follows the live API. Each :class:`Difference` says what the description says, what
the live service does, and patches a copy of the description to match, so the conformance tests
validate the sandbox against the live shape. docs/sandbox.md lists the same entries by name
(test_docs_list_every_known_difference keeps the two together).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import yaml

from tests.fixtures import FLY_OPENAPI_SPEC, GITHUB_OPENAPI_SPEC
from tests.sandbox.conformance import ISO_Z, Reference, walk

Document = dict[str, Any]
GITHUB_HOSTS = ("github.com", "githubusercontent.com")


@dataclass(frozen=True)
class Difference:
    name: str
    provider: str  # fly / github
    described: str
    live: str
    patch: Callable[[Document], None]


def _schemas(doc: Document) -> Document:
    return doc["components"]["schemas"]


def _require(schema: str, *fields: str) -> Callable[[Document], None]:
    def patch(doc: Document) -> None:
        target = _schemas(doc)[schema]
        target["required"] = sorted({*target.get("required", ()), *fields})

    return patch


def _json(schema: Document) -> Document:
    return {"description": "live answer", "content": {"application/json": {"schema": schema}}}


def _answer(path: str, method: str, status: str, schema: Document) -> Callable[[Document], None]:
    def patch(doc: Document) -> None:
        doc["paths"][path][method]["responses"][status] = _json(schema)

    return patch


def _add_operations(operations: Document) -> Callable[[Document], None]:
    def patch(doc: Document) -> None:
        for path, methods in operations.items():
            doc["paths"].setdefault(path, {}).update(copy.deepcopy(methods))

    return patch


def _all(*patches: Callable[[Document], None]) -> Callable[[Document], None]:
    def patch(doc: Document) -> None:
        for each in patches:
            each(doc)

    return patch


_MACHINE = "/apps/{app_name}/machines/{machine_id}"
_APP_PARAM = {"in": "path", "name": "app_name", "required": True, "schema": {"type": "string"}}
_MACHINE_PARAMS = [
    _APP_PARAM,
    {"in": "path", "name": "machine_id", "required": True, "schema": {"type": "string"}},
]
_OK = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
_SECRET = {
    "type": "object",
    "required": ["name", "digest", "created_at"],
    "properties": {
        "name": {"type": "string"},
        "digest": {"type": "string"},
        "created_at": {"type": "string"},
        "value": {"type": "string"},
    },
}
_LEASE_ENVELOPE = {
    "type": "object",
    "required": ["status", "data"],
    "properties": {
        "status": {"type": "string", "enum": ["success"]},
        "data": {"$ref": "#/components/schemas/Lease"},
    },
}

FLY = [
    Difference(
        "fly-app-network",
        "fly",
        "ListApp.network is an object and optional",
        'every app in the list has "network", a string ("default")',
        _all(
            lambda doc: _schemas(doc)["ListApp"]["properties"].update(network={"type": "string"}),
            _require("ListApp", "id", "name", "machine_count", "network"),
        ),
    ),
    Difference(
        "fly-machine-fields",
        "fly",
        "every Machine field is optional",
        "a machine always has id, name, state, region, instance_id, private_ip, config, "
        "image_ref, created_at, updated_at and events",
        _require(
            "Machine",
            "id",
            "name",
            "state",
            "region",
            "instance_id",
            "private_ip",
            "config",
            "image_ref",
            "created_at",
            "updated_at",
            "events",
        ),
    ),
    Difference(
        "fly-app-fields",
        "fly",
        "every App field is optional",
        "an app always has id, name, status and organization (name, slug)",
        _all(
            _require("App", "id", "name", "status", "organization"),
            _require("Organization", "name", "slug"),
        ),
    ),
    Difference(
        "fly-event-fields",
        "fly",
        "every MachineEvent field is optional",
        "an event always has id, type, status, source and timestamp (epoch milliseconds)",
        _require("MachineEvent", "id", "type", "status", "source", "timestamp"),
    ),
    Difference(
        "fly-lease-envelope",
        "fly",
        "lease endpoints answer a bare Lease",
        'they answer {"status": "success", "data": Lease} (as Fly\'s docs and fly-go read it); '
        'releasing answers {"status": "success", "data": {"ok": true}}',
        _all(
            _require("Lease", "nonce", "owner", "description", "expires_at", "version"),
            _answer(_MACHINE + "/lease", "get", "200", _LEASE_ENVELOPE),
            _answer(_MACHINE + "/lease", "post", "200", _LEASE_ENVELOPE),
            _answer(
                _MACHINE + "/lease",
                "delete",
                "200",
                {**_LEASE_ENVELOPE, "properties": {"status": {"type": "string"}, "data": _OK}},
            ),
        ),
    ),
    Difference(
        "fly-action-bodies",
        "fly",
        "start, stop and machine delete answer 200 without a body",
        'start answers {"previous_state", "migrated", "new_host"}; stop and delete {"ok": true}',
        _all(
            _answer(
                _MACHINE + "/start",
                "post",
                "200",
                {
                    "type": "object",
                    "required": ["previous_state"],
                    "properties": {
                        "previous_state": {"type": "string"},
                        "migrated": {"type": "boolean"},
                        "new_host": {"type": "string"},
                    },
                },
            ),
            _answer(_MACHINE + "/stop", "post", "200", _OK),
            _answer(_MACHINE, "delete", "200", _OK),
        ),
    ),
    Difference(
        "fly-suspend",
        "fly",
        "no suspend endpoint (the snapshot predates it)",
        'POST .../machines/{id}/suspend suspends a started machine and answers {"ok": true}',
        _add_operations(
            {
                _MACHINE + "/suspend": {
                    "parameters": _MACHINE_PARAMS,
                    "post": {"responses": {"200": _json(_OK)}},
                }
            }
        ),
    ),
    Difference(
        "fly-secrets",
        "fly",
        "no app secrets endpoints (the snapshot predates them)",
        'GET /apps/{app}/secrets lists {"secrets": [{name, digest, created_at}]} (values only '
        'with show_secrets=true); POST with {"values": {NAME: value or null}} sets and unsets '
        'in one call and answers the listing plus the new "version"',
        _add_operations(
            {
                "/apps/{app_name}/secrets": {
                    "parameters": [_APP_PARAM],
                    "get": {
                        "parameters": [
                            {"in": "query", "name": "show_secrets", "schema": {"type": "boolean"}}
                        ],
                        "responses": {
                            "200": _json(
                                {
                                    "type": "object",
                                    "required": ["secrets"],
                                    "properties": {"secrets": {"type": "array", "items": _SECRET}},
                                }
                            )
                        },
                    },
                    "post": {
                        "requestBody": {
                            "required": True,
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["values"],
                                        "properties": {
                                            "values": {
                                                "type": "object",
                                                "additionalProperties": {
                                                    "type": "string",
                                                    "nullable": True,
                                                },
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "responses": {
                            "200": _json(
                                {
                                    "type": "object",
                                    "required": ["secrets", "version"],
                                    "properties": {
                                        "secrets": {"type": "array", "items": _SECRET},
                                        "version": {"type": "integer"},
                                    },
                                }
                            )
                        },
                    },
                }
            }
        ),
    ),
]


def _null_in_nullable_enums(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("nullable") and isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"].append(None)
        for value in node.values():
            _null_in_nullable_enums(value)
    elif isinstance(node, list):
        for value in node:
            _null_in_nullable_enums(value)


GITHUB = [
    Difference(
        "github-nullable-enums",
        "github",
        "nullable enums (a check run's conclusion, say) do not list null, which OpenAPI 3.0.3 "
        "reads as null being refused",
        "null is answered where the field is nullable (a check run still running has no "
        "conclusion)",
        _null_in_nullable_enums,
    ),
    Difference(
        "github-release-download",
        "github",
        "the REST description has no release download: it is a github.com web URL",
        "an asset's browser_download_url answers its bytes as application/octet-stream",
        _add_operations(
            {
                "/{owner}/{repo}/releases/download/{tag}/{name}": {
                    "parameters": [
                        {"in": "path", "name": n, "required": True, "schema": {"type": "string"}}
                        for n in ("owner", "repo", "tag", "name")
                    ],
                    "get": {
                        "responses": {
                            "200": {
                                "description": "the asset's bytes",
                                "content": {
                                    "application/octet-stream": {
                                        "schema": {"type": "string", "format": "binary"}
                                    }
                                },
                            },
                            "404": {"$ref": "#/components/responses/not_found"},
                        }
                    },
                }
            }
        ),
    ),
]

DIFFERENCES = FLY + GITHUB


def _patched(document: Document, provider: str) -> Document:
    for difference in DIFFERENCES:
        if difference.provider == provider:
            difference.patch(document)
    return document


def timestamp_problems(body: Any) -> list[str]:
    """String timestamps must be ISO 8601 in UTC with a ``Z``, as both services write them."""
    return [
        f"{key}: {value!r} is not ISO 8601 with Z"
        for key, value in walk(body)
        if (key.endswith("_at") or key in ("date", "timestamp"))
        and isinstance(value, str)
        and not ISO_Z.match(value)
    ]


def github_house_rules(base: str) -> Callable[[Any], list[str]]:
    """Timestamps, and URLs: none leads to GitHub itself (only to its documentation), and
    every one on the sandbox's host is under ``base``, the GitHub root clients use."""
    host = httpx.URL(base).host

    def rules(body: Any) -> list[str]:
        problems = timestamp_problems(body)
        for key, value in walk(body):
            if not (key == "url" or key.endswith("_url")) or not isinstance(value, str):
                continue
            target = httpx.URL(value).host if "://" in value else ""
            github = target.endswith(GITHUB_HOSTS) and not target.startswith("docs.")
            if github or (target == host and not value.startswith(base)):
                problems.append(f"{key}: {value!r} is not under {base}")
        return problems

    return rules


@cache
def fly_document() -> Document:
    return _patched(yaml.safe_load(FLY_OPENAPI_SPEC.read_text()), "fly")


@cache
def github_document() -> Document:
    return _patched(json.loads(GITHUB_OPENAPI_SPEC.read_text()), "github")


@cache
def fly_reference() -> Reference:
    return Reference(
        fly_document(),
        server="https://api.machines.dev/v1",
        prefix="/fly/v1",
        error_schema=lambda _status: "ErrorResponse",
        house_rules=timestamp_problems,
    )


@cache
def github_reference(base: str) -> Reference:
    """GitHub's description for a sandbox whose GitHub API is at ``base``."""
    return Reference(
        github_document(),
        server="https://api.github.com",
        prefix=httpx.URL(base).path,
        error_schema=lambda status: "validation-error" if status == 422 else "basic-error",
        house_rules=github_house_rules(base),
    )
