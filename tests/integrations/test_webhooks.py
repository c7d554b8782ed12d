"""parse_webhook against real GitHub payloads and against the sandbox's deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from hotdash.integrations.github import (
    PingEvent,
    PullRequestEvent,
    PushEvent,
    ReleaseEvent,
    parse_webhook,
)
from tests.fixtures import GITHUB_WEBHOOK_PAYLOADS

PAYLOADS = sorted(GITHUB_WEBHOOK_PAYLOADS.glob("*.json"))
KINDS = {
    "pull_request": PullRequestEvent,
    "push": PushEvent,
    "release": ReleaseEvent,
    "ping": PingEvent,
}


def test_the_reference_payloads_are_present():
    assert len(PAYLOADS) >= 18


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
def test_every_reference_payload_parses_unchanged(path):
    event = path.name.split(".")[0]
    payload = json.loads(path.read_text())
    before = json.dumps(payload, sort_keys=True)
    parsed = parse_webhook(event, payload)
    assert json.dumps(payload, sort_keys=True) == before
    if event not in KINDS:
        assert parsed is None
        return
    assert isinstance(parsed, KINDS[event])
    assert parsed.repository == payload["repository"]["full_name"]
    if isinstance(parsed, PullRequestEvent):
        pr = payload["pull_request"]
        assert parsed.action == payload["action"] == path.name.split(".")[1]
        assert parsed.pull_request.head_sha == pr["head"]["sha"]
        assert parsed.pull_request.merged == bool(pr["merged"])
        assert parsed.pull_request.body == (pr["body"] or "")
        assert parsed.pull_request.draft == pr["draft"]
    elif isinstance(parsed, PushEvent):
        assert (parsed.ref, parsed.after) == (payload["ref"], payload["after"])
        assert len(parsed.commits) == len(payload["commits"])
        assert parsed.head_sha == (payload["head_commit"] or {}).get("id")
    elif isinstance(parsed, ReleaseEvent):
        assert parsed.release.tag_name == payload["release"]["tag_name"]
        assert parsed.release.prerelease == payload["release"]["prerelease"]
    else:
        assert parsed.hook_id == payload["hook_id"]


def test_synchronize_carries_before_and_after():
    payload = json.loads((PAYLOADS[0].parent / "pull_request.synchronize.payload.json").read_text())
    parsed = parse_webhook("pull_request", payload)
    assert (parsed.before, parsed.after) == (payload["before"], payload["after"])


def test_sandbox_deliveries_are_signed_and_parse(sandbox):
    sandbox.webhook.secret = "It's a Secret to Everybody"
    received: list[tuple[dict, bytes]] = []
    sandbox.webhook.sink = lambda headers, body: received.append((headers, body)) or 202
    number = sandbox.open_pull("feat: dark mode", "feature/dark-mode")["number"]
    sandbox.push_to_pull(number, "fix: contrast")
    sandbox.close_pull(number, merge=True)
    sandbox.publish_release("1.4.0", prerelease=True, commits=["feat: dark mode (#18)"])
    events = []
    for headers, body in received:
        expected = (
            "sha256=" + hmac.new(b"It's a Secret to Everybody", body, hashlib.sha256).hexdigest()
        )
        assert hmac.compare_digest(headers["X-Hub-Signature-256"], expected)
        parsed = parse_webhook(headers["X-GitHub-Event"], json.loads(body))
        events.append((headers["X-GitHub-Event"], getattr(parsed, "action", None)))
    assert events == [
        ("pull_request", "opened"),
        ("pull_request", "synchronize"),
        ("pull_request", "closed"),
        ("push", None),
        ("push", None),
        ("release", "published"),
    ]
    closed = parse_webhook("pull_request", json.loads(received[2][1]))
    assert closed.pull_request.merged
    release = parse_webhook("release", json.loads(received[-1][1]))
    assert release.release.prerelease and release.release.tag_name == "v1.4.0"
    assert {d["status"] for d in sandbox.webhook.deliveries} == {202}
    assert len({d["id"] for d in sandbox.webhook.deliveries}) == len(received)
