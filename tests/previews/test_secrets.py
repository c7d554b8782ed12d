"""Staging secrets reach same-repository previews by value, and nothing else ever sees a value."""

from __future__ import annotations

import io
import json
import logging

from django.core.management import call_command

from deployments.models import Deploy, Preview, WebhookDelivery
from deployments.services.previews import preview_state_refresh
from tests.previews.conftest import (
    preview_deploys,
    preview_of,
    reveal_staging_secrets,
    secret_digest,
)

CANARY = "canary-7d0e5c1b-secret-value-never-shown"


def test_secret_values_never_reach_logs_pages_or_the_database(
    world, driver, process_deliveries, client, admin_user, caplog
):
    reveal_staging_secrets(world, {"DATABASE_URL": CANARY, "STRIPE_KEY": CANARY + "-2"})
    caplog.set_level(logging.DEBUG)
    number = world.open_pull("feat: payments", "payments")["number"]
    process_deliveries()
    [deploy] = preview_deploys(number)
    assert driver.run(deploy).state == Deploy.State.SUCCEEDED
    preview = preview_of(number)
    preview_state_refresh(preview=preview)

    # The value arrived where it belongs: on the preview app (the sandbox keeps its digest).
    copied = world.fly.secrets[f"hot-dash-pr-{number}"]
    assert copied["DATABASE_URL"]["digest"] == secret_digest(CANARY)
    assert preview_of(number).secret_names == ["DATABASE_URL", "STRIPE_KEY"]

    client.force_login(admin_user)
    page = client.get("/previews/").content.decode()
    assert "DATABASE_URL" in page and "STRIPE_KEY" in page
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    comments = json.dumps(list(world.github.comments.values()))
    for where, text in {
        "logs": caplog.text,
        "previews page": page,
        "database": dump.getvalue(),
        "PR comments": comments,
    }.items():
        assert CANARY not in text, f"secret value leaked into {where}"


def _fork_delivery(world) -> dict:
    """A PR opened from a fork: the sandbox's own payload with the head in another repo."""
    sink, world.webhook.sink = world.webhook.sink, None
    world.open_pull("fix: tiny", "patch-1", author="mallory")
    world.webhook.sink = sink
    payload = json.loads(world.webhook.deliveries[-1]["body"])
    head = payload["pull_request"]["head"]
    head["repo"] = {**head["repo"], "full_name": "mallory/hot-dash", "fork": True}
    head["label"] = "mallory:patch-1"
    return payload


def test_fork_prs_get_a_preview_without_staging_secrets(world, process_deliveries, post_delivery):
    payload = _fork_delivery(world)
    number = payload["number"]
    assert post_delivery("pull_request", payload).status_code == 202
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail

    preview = preview_of(number)
    assert preview.is_fork is True and preview.secret_names == []
    assert world.fly.secrets.get(f"hot-dash-pr-{number}", {}) == {}
    set_calls = world.calls(method="POST", path=rf"/apps/hot-dash-pr-{number}/secrets")
    assert set_calls == []
    assert preview.state == Preview.State.CREATING


def test_a_head_repository_that_is_gone_counts_as_a_fork(world, process_deliveries, post_delivery):
    payload = _fork_delivery(world)
    payload["pull_request"]["head"]["repo"] = None
    assert post_delivery("pull_request", payload).status_code == 202
    process_deliveries()
    assert preview_of(payload["number"]).is_fork is True
    assert preview_of(payload["number"]).secret_names == []
