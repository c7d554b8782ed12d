"""Every GitHub route the sandbox serves, walked with a scripted scenario: each request (HotDash's
own client where it has the call) and each answer validates against GitHub's REST description
(@octokit/openapi, pruned; see tests/fixtures/reference/README.md), with the known differences of
known_differences.py. The webhooks the sandbox sends validate against the same description's
webhook schemas and carry GitHub's delivery headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from hotdash.integrations.github import github_client
from hotdash.integrations.github_oauth import Team, current_login, signed_in_user, team_member
from hotdash.integrations.http import use_transport
from hotdash.sandbox import demo
from hotdash.sandbox.github import sign
from tests.fixtures.sandbox import SandboxTransport
from tests.sandbox.conformance import ValidatingTransport, described_routes
from tests.sandbox.known_differences import github_reference

REPO = f"/repos/{demo.REPO_OWNER}/{demo.REPO_NAME}"
SECRET = "conformance-secret"


@pytest.fixture
def validating(sandbox) -> Iterator[ValidatingTransport]:
    reference = github_reference(sandbox.github_url)
    transport = ValidatingTransport(
        SandboxTransport(app=sandbox.app), reference, sandbox.github.router
    )
    with use_transport(transport):
        yield transport


@pytest.fixture
def raw(sandbox, validating) -> Iterator[httpx.Client]:
    """Plain requests for the routes HotDash's client has no call for."""
    with httpx.Client(
        transport=validating,
        base_url=sandbox.github_url,
        headers={"Authorization": "Bearer t", "Accept": "application/vnd.github+json"},
    ) as client:
        yield client


def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 400, response.text
    return response


def test_every_route_has_a_described_operation(sandbox):
    routes = described_routes(sandbox.github.router, github_reference(sandbox.github_url))
    assert [route for route, path in routes.items() if path is None] == []


def test_every_route_answers_as_described(sandbox, validating, raw):
    github = github_client(demo.REPO_OWNER, demo.REPO_NAME, sleep=lambda _s: None)
    pull = sandbox.open_pull("feat: conformance", "feature/conformance", body="Walks every route.")
    sandbox.push_to_pull(pull["number"])
    head = sandbox.github.branches["feature/conformance"]

    releases = github.list_releases()
    release = github.get_release_by_tag("v1.3.0")
    assets = github.list_release_assets(release.id)
    assert github.download_asset(assets[0].id)
    ok(raw.get(f"{REPO}/releases/{release.id}"))
    ok(raw.get(f"{REPO}/releases/assets/{assets[0].id}"))
    ok(raw.get(f"{REPO}/releases", params={"per_page": 2, "page": 2}))
    ok(raw.get(f"{REPO}/tags"))
    assert github.get_file(demo.VERSION_FILE, "v1.3.0")
    github.compare("v1.2.0", "v1.3.0")
    ok(raw.get(f"{REPO}/commits", params={"sha": "main", "per_page": 5}))
    ok(raw.get(f"{REPO}/commits/{head}"))

    ok(raw.post(f"{REPO}/statuses/{head}", json={"state": "success", "context": "ci/e2e"}))
    ok(raw.get(f"{REPO}/commits/{head}/statuses"))
    github.combined_status(head)
    sandbox.set_check(head, "test-unit", "in_progress", None)
    github.check_runs(head)

    deployment = github.create_deployment(
        ref="v1.3.0", environment="staging", key="conformance", description="walk"
    )
    github.create_deployment_status(deployment.id, "in_progress", log_url="https://h.example/d/1")
    github.create_deployment_status(
        deployment.id, "success", environment_url="https://staging.example"
    )
    github.list_deployment_statuses(deployment.id)
    github.list_deployments(environment="staging")
    ok(raw.get(f"{REPO}/deployments/{deployment.id}"))

    github.list_pulls(state="all")
    github.get_pull(pull["number"])
    comment = github.create_comment(pull["number"], "Preview ready")
    github.update_comment(comment.id, "Preview updated")
    github.list_comments(pull["number"])
    ok(raw.get(f"{REPO}/issues/comments/{comment.id}"))
    assert github.branch_protection("main") is not None
    assert github.actions_secrets()
    assert github.get_repository().secret_scanning
    sandbox.add_secret_alert("ghp_conformance")
    assert github.secret_scanning_alerts()
    ok(raw.get(f"{REPO}/secret-scanning/alerts"))  # with the secret, as GitHub answers by default

    # The people endpoints of Sign in with GitHub (the token as the OAuth code exchange gives it).
    person, teams = signed_in_user(sandbox.org.issue_token("bob"))
    assert person.login == "bob" and Team(demo.REPO_OWNER, "approvers") in teams
    assert team_member(team=Team(demo.REPO_OWNER, "approvers"), login="bob")
    assert not team_member(team=Team(demo.REPO_OWNER, "approvers"), login="erin")  # a 404
    assert current_login(person.id) == "bob"
    assert current_login(1) is None  # a 404

    # Errors have GitHub's shape too (checked against basic-error / validation-error).
    assert raw.get(f"{REPO}/releases/tags/v0.0.0").status_code == 404
    with validating.invalid_requests():
        assert raw.post(f"{REPO}/statuses/{head}", json={"state": "bogus"}).status_code == 422
        assert raw.post(f"{REPO}/issues/{pull['number']}/comments", json={}).status_code == 422

    assert len(releases) == len(sandbox.github.releases)
    problems = validating.problems()
    assert not problems, "\n".join(problems)
    served = {f"{method} {pattern}" for method, pattern in sandbox.github.router.routes()}
    assert served - validating.routes() == set()


def test_errors_have_githubs_shape(sandbox, raw):
    missing = raw.get(f"{REPO}/pulls/999")
    assert missing.status_code == 404
    assert set(missing.json()) >= {"message", "documentation_url"}
    invalid = raw.post(f"{REPO}/statuses/{sandbox.github.branches['main']}", json={})
    assert invalid.status_code == 422
    body = invalid.json()
    assert body["message"] == "Validation Failed"
    assert body["errors"] and {"resource", "field", "code"} <= set(body["errors"][0])


def test_pagination_links_walk_every_page(sandbox, raw):
    seen, url = [], f"{REPO}/releases?per_page=2"
    while url:
        response = ok(raw.get(url))
        seen += [r["tag_name"] for r in response.json()]
        url = response.links.get("next", {}).get("url")
        if url:
            assert url.startswith(sandbox.github_url)
    assert len(seen) == len(set(seen)) == len(sandbox.github.releases)
    last = ok(raw.get(f"{REPO}/releases?per_page=2&page=2")).headers["link"]
    assert {'rel="next"', 'rel="last"', 'rel="prev"', 'rel="first"'} <= set(
        re.findall(r'rel="\w+"', last)
    )


# --- webhooks ------------------------------------------------------------------------------


@pytest.fixture
def deliveries(sandbox):
    sent: list[tuple[dict[str, str], bytes]] = []
    sandbox.webhook.secret = SECRET
    sandbox.webhook.sink = lambda headers, body: sent.append((headers, body)) or 202
    return sent


def _webhook_schema(event: str, payload: dict) -> str:
    action = payload.get("action")
    return f"webhook-{event.replace('_', '-')}" + (f"-{action.replace('_', '-')}" if action else "")


def test_webhooks_validate_and_carry_githubs_headers(sandbox, deliveries):
    pull = sandbox.open_pull("feat: hooks", "feature/hooks")
    sandbox.push_to_pull(pull["number"])
    sandbox.close_pull(pull["number"], merge=True)
    sandbox.publish_release("1.4.0")
    sandbox.world.set_check("main", "test-unit", "completed", "failure")
    sandbox.team_remove("approvers", "carol")
    sandbox.team_add("approvers", "erin")
    sandbox.team_delete("viewers")
    reference = github_reference(sandbox.github_url)
    kinds, problems = set(), []
    for headers, body in deliveries:
        event, payload = headers["X-GitHub-Event"], json.loads(body)
        kinds.add(f"{event}.{payload.get('action', '')}".rstrip("."))
        schema = _webhook_schema(event, payload)
        problems += [f"{schema}: {p}" for p in reference.schema_problems(schema, payload)]
        problems += [f"{schema}: {p}" for p in reference.house_rules(payload)]
        assert headers["X-Hub-Signature-256"] == sign(SECRET, body)
        assert headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            headers["X-GitHub-Delivery"],
        )
        assert headers["X-GitHub-Hook-ID"].isdigit()
        assert headers["Content-Type"] == "application/json"
    assert not problems, "\n".join(problems)
    assert kinds >= {
        "pull_request.opened",
        "pull_request.synchronize",
        "pull_request.closed",
        "push",
        "release.published",
        "check_run.completed",
        "check_suite.completed",
        "workflow_run.completed",
        "membership.removed",
        "membership.added",
        "team.deleted",
    }
