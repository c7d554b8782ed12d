"""Preview fixtures: the demo world, the sandbox delivering webhooks to us, and an in-process
driver for the deploys that previews request."""

from __future__ import annotations

import contextlib
import hashlib
import json

import pytest

from deployments.models import Deploy, Preview
from tests.engine.conftest import Driver
from tests.fixtures import GITHUB_WEBHOOK_PAYLOADS
from tests.webhooks import conftest as webhook_fixtures

# Fixtures shared with the webhook tests.
hooked_sandbox = webhook_fixtures.hooked_sandbox
post_delivery = webhook_fixtures.post_delivery
process_deliveries = webhook_fixtures.process_deliveries


REFERENCE = GITHUB_WEBHOOK_PAYLOADS
STAGING_SECRETS = {"DATABASE_URL": "postgres://staging-db/hot", "SECRET_KEY": "staging-key-3f1"}


def secret_digest(value: str) -> str:
    """How the sandbox digests a secret value it was given."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def reveal_staging_secrets(world, values: dict[str, str]) -> None:
    """Staging's secrets in the sandbox, with values that ``show_secrets`` reads reveal."""
    stale = dict.fromkeys(world.fly.secrets.get("hot-dash-staging", {}))
    world.fly.put_secrets("hot-dash-staging", {**stale, **values})


@pytest.fixture
def world(demo, hooked_sandbox):
    """Demo data in the database and the sandbox delivering PR webhooks to /webhooks/github;
    staging has two secrets whose values Fly reveals to ``show_secrets``."""
    reveal_staging_secrets(hooked_sandbox, STAGING_SECRETS)
    return hooked_sandbox


@pytest.fixture
def driver(world, time_machine, settings):
    settings.DEPLOY_POLL_SECONDS = 1
    settings.DEPLOY_QUEUE_POLL_SECONDS = 1
    time_machine.move_to(world.clock.now(), tick=False)
    return Driver(sandbox=world, traveller=time_machine)


def preview_of(number: int) -> Preview:
    return Preview.objects.select_related("environment", "app").get(pr_number=number)


def preview_deploys(number: int) -> list[Deploy]:
    return list(preview_of(number).environment.deploys.order_by("created_at", "id"))


@contextlib.contextmanager
def undelivered(world):
    """GitHub activity in the sandbox whose webhooks are recorded but not sent to us."""
    sink, world.webhook.sink = world.webhook.sink, None
    try:
        yield
    finally:
        world.webhook.sink = sink


def fork_payload(world, action: str, number: int) -> dict:
    """GitHub's reference ``pull_request.<action>`` payload, made about the sandbox's PR
    ``number`` of the demo repository, with its head in the author's fork."""
    payload = json.loads((REFERENCE / f"pull_request.{action}.payload.json").read_bytes())
    pull = world.github.pulls[number]
    repository = {**payload["repository"], "full_name": "hotdash-demo/hot-dash"}
    data = payload["pull_request"]
    head_repo = {**data["head"]["repo"], "full_name": f"{pull['author']}/hot-dash", "fork": True}
    data.update(number=number, title=pull["title"], state=pull["state"], draft=pull["draft"])
    data["user"] = {**data["user"], "login": pull["author"]}
    data["head"].update(
        ref=pull["branch"],
        sha=pull["head_sha"],
        label=f"{pull['author']}:{pull['branch']}",
        repo=head_repo,
    )
    data["base"]["repo"] = repository
    data["merged"] = pull["merged_at"] is not None
    payload.update(number=number, repository=repository)
    if "after" in payload:
        payload["after"] = pull["head_sha"]
    return payload


def fork_pull_open(world, post_delivery, title: str, branch: str) -> int:
    """mallory opens a PR from her fork; GitHub's signed delivery reaches our endpoint."""
    with undelivered(world):
        number = world.open_pull(title, branch, author="mallory")["number"]
    assert post_delivery("pull_request", fork_payload(world, "opened", number)).status_code == 202
    return number


def fork_pull_push(world, post_delivery, number: int) -> str:
    """mallory pushes a commit to her fork's PR branch; returns the new head commit."""
    with undelivered(world):
        head = world.push_to_pull(number, "fix: more")["head_sha"]
    payload = fork_payload(world, "synchronize", number)
    assert post_delivery("pull_request", payload).status_code == 202
    return head
