"""The few HTTP types the sandbox's handlers share (plain stdlib, no framework)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str  # below the service prefix
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # scheme://host/<service prefix>, for URLs in responses

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise Problem(400, f"body is not JSON: {exc}") from exc


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json; charset=utf-8"

    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


class Problem(Exception):  # noqa: N818 - a response, not an error of ours
    """Raised by handlers to answer an error; each service renders it in its own body shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors  # GitHub's 422 details: [{"resource", "field", "code"}]
        self.headers = headers or {}


Handler = Callable[..., Response]


class Router:
    """Maps ``METHOD /path/{param}`` patterns to handlers; ``{name:.+}`` spans slashes."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        def group(match: re.Match[str]) -> str:
            name, _, expr = match.group(1).partition(":")
            return f"(?P<{name}>{expr or '[^/]+'})"

        regex = re.compile("^" + re.sub(r"\{([^}]+)\}", group, pattern) + "$")
        self._routes.append((method, pattern, regex, handler))

    def routes(self) -> list[tuple[str, str]]:
        """Every (method, pattern) served, in the order added."""
        return [(method, pattern) for method, pattern, _, _ in self._routes]

    def pattern(self, method: str, path: str) -> str | None:
        """The pattern of the route that answers ``method path``, if any."""
        return next(
            (p for m, p, regex, _ in self._routes if m == method and regex.match(path)), None
        )

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        for route_method, _, regex, handler in self._routes:
            match = regex.match(path)
            if match:
                if route_method == method:
                    return handler, match.groupdict()
                allowed = True
        raise Problem(405 if allowed else 404, "method not allowed" if allowed else "not found")
