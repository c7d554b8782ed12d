"""Preview fixtures: the demo world, the sandbox delivering webhooks to us, and an in-process
driver for the deploys that previews request."""

from __future__ import annotations

import hashlib

import pytest

from deployments.models import Deploy, Preview
from tests.engine.conftest import Driver
from tests.webhooks import conftest as webhook_fixtures

# Fixtures shared with the webhook tests.
hooked_sandbox = webhook_fixtures.hooked_sandbox
post_delivery = webhook_fixtures.post_delivery
process_deliveries = webhook_fixtures.process_deliveries


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
