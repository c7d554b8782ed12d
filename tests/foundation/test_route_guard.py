"""Every route the URL resolver knows, walked: login on every page, and no
state change (no row added, removed or altered) by anyone below the deployer role, whatever
they POST. The role matrix in
test_permissions.py checks who may do what; this catches a route nobody added to it."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

# Routes that answer without a session, each with its own authentication.
PUBLIC = {
    "health",  # liveness, no data
    "metrics",  # Prometheus text, no secrets
    "login",
    "admin-login",  # a redirect to the login page
    "logout",
    "github-sign-in-start",  # Sign in with GitHub: POST with CSRF, then GitHub says who
    "github-sign-in-callback",  # the OAuth state kept in the session (tests/github_accounts)
    "github-webhook",  # HMAC signature (tests/webhooks)
    "openapi",  # the API's published schema: no data
    "api-not-found",  # the JSON 404 of any other /api/ path: no data
}


def _routes() -> list[tuple[str, str]]:
    """(name, path template) of every named route but Django's admin (staff-only by itself)."""

    def walk(patterns, prefix: str, namespace: str | None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = pattern.namespace or namespace
                if inner == "admin":
                    continue
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                yield name, prefix + str(pattern.pattern)

    return sorted(set(walk(get_resolver().url_patterns, "/", None)))


def _url(template: str) -> str:
    """A concrete path: every id becomes 1, every other parameter the demo app."""
    path = re.sub(r"<(?:int|id):\w+>|<str:pk>", "1", template)
    return re.sub(r"<(?:slug|str|path):\w+>", "hot-dash", path)


ROUTES = [(name, _url(template)) for name, template in _routes() if name not in PUBLIC]


def _rows() -> dict[str, list[str]]:
    """Every row of every model (but the audit log, sessions and the admin's log), each as the
    repr of its field values: an UPDATE in place shows up, not only an INSERT or a DELETE."""
    return {
        model._meta.label: sorted(map(repr, model._default_manager.values_list()))
        for model in apps.get_models()
        if model._meta.label not in {"approvals.AuditEvent", "approvals.AuditChainHead"}
        and not model._meta.label.startswith(("sessions.", "admin."))
    }


def test_the_walk_finds_the_routes_we_know():
    names = {name for name, _ in ROUTES}
    assert {"approvals:decide", "deployments:deploy-abort", "api-deploys-create"} <= names
    assert len(ROUTES) > 40


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "url"), ROUTES, ids=[name for name, _ in ROUTES])
def test_every_route_needs_a_login_or_a_token(client, name, url):
    for method in (client.get, client.post):
        response = method(url)
        if url.startswith("/api/"):
            # 405 (with Allow) for a method the operation does not have, before the token.
            assert response.status_code in (401, 405), (name, method.__name__)
        else:
            assert response.status_code == 302, (name, method.__name__)
            assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["outsider", "viewer"])
@pytest.mark.parametrize(
    ("name", "url"),
    [(name, url) for name, url in ROUTES if not url.startswith("/api/")],
    ids=[name for name, url in ROUTES if not url.startswith("/api/")],
)
def test_below_deployer_a_post_anywhere_changes_nothing(
    client, demo, sandbox, request, role, name, url
):
    client.force_login(request.getfixturevalue(role))
    before = _rows()

    response = client.post(url, {"reason": "x", "comment": "x", "decision": "approve"})

    # Tokens, e-mail choices and the time zone are personal: any reader manages their own (a
    # token and a time zone are refused here for the missing name and zone; no e-mail choice
    # is sent, so none changes).
    allowed = (
        {403, 404, 405}
        | ({422} if name in ("deployments:token-create", "deployments:time-zone") else set())
        | ({302} if name == "deployments:email-preferences" else set())
    )
    assert response.status_code in allowed, (name, response.status_code)
    assert _rows() == before
