"""The ``api`` fixture: call /api/v1 as a persona, every response validated against the served
OpenAPI schema (status, body and documented headers)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from deployments.services.tokens import api_token_create


@pytest.fixture
def api(client, demo, sandbox):
    """``api(user, method, path, body=None, *, raw=None, authorization=None)``.

    ``path`` may end in a query string. ``user`` None sends no Authorization header;
    ``authorization`` replaces the user's
    ``Bearer <token>``; ``raw`` bytes replace the JSON-encoded ``body``. A response status or
    error code the schema does not list for the operation fails the test.
    """
    spec = OpenAPI.from_dict(client.get("/api/v1/openapi.json").json())
    tokens: dict[int, str] = {}

    def call(user, method, path, body=None, *, raw=None, authorization=None):
        if authorization is None and user is not None:
            if user.pk not in tokens:
                tokens[user.pk] = api_token_create(user=user, name="test")[1]
            authorization = f"Bearer {tokens[user.pk]}"
        data = raw if raw is not None else json.dumps(body) if body is not None else None
        response = getattr(client, method)(
            "/api/v1" + path,
            data=data,
            content_type="application/json",
            headers={"Authorization": authorization} if authorization else {},
        )
        # A 405 has no operation of its own: it is documented on the path's operations, which
        # its Allow header names.
        as_method = (
            response["Allow"].split(",")[0].strip().lower()
            if response.status_code == 405
            else method
        )
        route, _, query = path.partition("?")
        spec.validate_response(
            MockRequest(
                "http://testserver",
                as_method,
                "/api/v1" + route,
                args=dict(parse_qsl(query)),
                data=data if isinstance(data, bytes | None) else data.encode(),
                content_type="application/json",
            ),
            MockResponse(
                response.content,
                status_code=response.status_code,
                headers=dict(response.headers),
                content_type="application/json",
            ),
        )
        return response

    return call
