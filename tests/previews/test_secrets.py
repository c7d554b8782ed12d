"""Staging secrets reach same-repository previews by value, and nothing else ever sees a value;
forks never get any."""

from __future__ import annotations

import io
import json
import logging

from django.core.management import call_command

from deployments.models import Deploy, Preview, WebhookDelivery
from deployments.services.previews import preview_state_refresh
from tests.previews.conftest import (
    fork_payload,
    preview_deploys,
    preview_of,
    reveal_staging_secrets,
    secret_digest,
    undelivered,
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


def test_a_head_repository_that_is_gone_counts_as_a_fork(world, process_deliveries, post_delivery):
    """A deleted fork's PR has ``head.repo: null``: held like any fork, and never given secrets
    (an approved fork deploying without them is in test_forks)."""
    with undelivered(world):
        number = world.open_pull("fix: tiny", "patch-1", author="mallory")["number"]
    payload = fork_payload(world, "opened", number)
    payload["pull_request"]["head"]["repo"] = None
    assert post_delivery("pull_request", payload).status_code == 202
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail
    preview = preview_of(number)
    assert preview.is_fork is True and preview.secret_names == []
    assert preview.state == Preview.State.AWAITING_APPROVAL
    assert world.calls(path=rf"/apps/hot-dash-pr-{number}(/.*)?") == []
