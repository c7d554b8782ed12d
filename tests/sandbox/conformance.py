"""Checking sandbox traffic against a provider's published OpenAPI description.

A :class:`Reference` is one provider's description with the known differences applied
(known_differences.py). A :class:`ValidatingTransport` sits between a client and the sandbox and
checks every request it sends and every answer it gets; it also notes which sandbox route
answered, so a test can prove that every route was exercised and validated.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from openapi_core import OpenAPI
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import MissingData
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from hotdash.sandbox.web import Router

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
_PARAM = re.compile(r"\{[^}]*\}")
_PARAM_REGEX = re.compile(r":[^}]*\}")  # the regex part of a sandbox route's {name:regex}


def shape(path: str) -> str:
    """A path with its parameters blanked: ``/apps/{app}`` and ``/apps/{app_name}`` match."""
    return _PARAM.sub("{}", path)


@dataclass
class Reference:
    """A provider's OpenAPI description, as the sandbox serves it.

    ``server`` is the description's server URL, ``prefix`` where the sandbox serves that API,
    ``error_schema(status)`` names the component schema of an error body whose status the
    operation does not list, and ``house_rules(body)`` returns problems beyond the schema.
    """

    document: dict[str, Any] = field(repr=False)
    server: str
    prefix: str
    error_schema: Callable[[int], str]
    house_rules: Callable[[Any], list[str]] = lambda _body: []
    openapi: OpenAPI = field(init=False)

    def __post_init__(self) -> None:
        self.openapi = OpenAPI.from_dict(self.document)
        self._server_path = httpx.URL(self.server).path.rstrip("/")

    def operation(self, method: str, pattern: str) -> str | None:
        """The described path of the sandbox route ``method pattern``, if there is one."""
        wanted = shape(self._server_path + pattern)
        for path, item in self.document["paths"].items():
            if shape(self._server_path + path) == wanted and method.lower() in item:
                return path
        return None

    def schema_problems(self, name: str, instance: Any) -> list[str]:
        """Problems of ``instance`` against the component schema ``name`` (formats included)."""
        schema = {**self.document, "$ref": f"#/components/schemas/{name}"}
        validator = OAS30Validator(schema, format_checker=oas30_format_checker)
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
            for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        ]

    def check(
        self, request: httpx.Request, response: httpx.Response, *, refused: bool = False
    ) -> list[str]:
        """Every problem of one exchange: request, response, and the house rules.

        ``refused``: the request is deliberately invalid, so the description must refuse it.
        """
        path = request.url.path.removeprefix(self.prefix)
        spec_request = MockRequest(
            self.server.removesuffix(self._server_path) if self._server_path else self.server,
            request.method.lower(),
            self._server_path + path,
            args=dict(request.url.params),
            headers=dict(request.headers),
            data=request.content or None,
            content_type=request.headers.get("content-type", "application/json"),
        )
        problems = [f"request: {e}" for e in _errors(self.openapi.validate_request, spec_request)]
        if refused:
            problems = [] if problems else ["request: meant to be invalid, yet it validates"]
        content_type = response.headers.get("content-type", "").split(";")[0]
        spec_response = MockResponse(
            response.content,
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=content_type,
        )
        try:
            self.openapi.validate_response(spec_request, spec_response)
        except ResponseNotFound:
            # A status the operation does not list: the body must be the provider's error.
            body = response.json() if response.content else None
            problems += self.schema_problems(self.error_schema(response.status_code), body)
        except MissingData:
            # `content: {}` reads as "a body is required" to openapi-core; it means "no body".
            if response.content:
                problems.append("response: a body where the description declares none")
        except Exception as exc:  # noqa: BLE001 - every kind of validation error is a finding
            cause = exc.__cause__
            if not (isinstance(cause, MediaTypeNotFound) and not cause.availableMimetypes):
                problems.append(f"response: {type(exc).__name__}: {_details(cause)}")
        if content_type == "application/json" and response.content:
            problems += self.house_rules(response.json())
        return problems


def _details(cause: BaseException | None) -> str:
    errors = getattr(cause, "schema_errors", ())
    if not errors:
        return repr(cause)[:300]
    return "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:200]}" for e in errors
    )


def _errors(validate: Callable[[Any], Any], subject: Any) -> list[str]:
    try:
        validate(subject)
    except Exception as exc:  # noqa: BLE001 - every kind of validation error is a finding
        return [f"{type(exc).__name__}: {_details(exc.__cause__)}"]
    return []


@dataclass(frozen=True)
class Exchange:
    route: str  # "METHOD pattern" of the sandbox route that answered, or "" for none
    status: int
    problems: tuple[str, ...]


class ValidatingTransport(httpx.BaseTransport):
    """Checks each exchange with ``reference``; remembers the sandbox route that answered."""

    def __init__(self, inner: httpx.BaseTransport, reference: Reference, router: Router) -> None:
        self.inner = inner
        self.reference = reference
        self.router = router
        self.exchanges: list[Exchange] = []
        self.refusing = False  # the requests now sent are meant to be invalid

    @contextlib.contextmanager
    def invalid_requests(self) -> Iterator[None]:
        """Within: every request must be one the description refuses (testing error bodies)."""
        self.refusing = True
        try:
            yield
        finally:
            self.refusing = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        path = request.url.path.removeprefix(self.reference.prefix)
        pattern = self.router.pattern(request.method, path)
        route = f"{request.method} {pattern}" if pattern else ""
        problems = self.reference.check(request, response, refused=self.refusing)
        self.exchanges.append(Exchange(route, response.status_code, tuple(problems)))
        return response

    def problems(self) -> list[str]:
        return [f"{e.route} -> {e.status}: {p}" for e in self.exchanges for p in e.problems]

    def routes(self) -> set[str]:
        return {e.route for e in self.exchanges if e.route and 200 <= e.status < 400}


def walk(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON document, depth first."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield name, value
            yield from walk(value, name)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value, key)


def described_routes(router: Router, reference: Reference) -> dict[str, str | None]:
    """Each sandbox route ("METHOD pattern") and the described path it maps to (or None)."""
    return {
        f"{method} {pattern}": reference.operation(method, _PARAM_REGEX.sub("}", pattern))
        for method, pattern in router.routes()
    }
