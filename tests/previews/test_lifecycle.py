"""A PR's preview from opened to closed, against the sandbox over its HTTP API."""

from __future__ import annotations

import json

from approvals.models import AuditEvent
from deployments.models import Deploy, Preview, WebhookDelivery
from deployments.services.previews import COMMENT_MARKER, preview_state_refresh
from hotdash.integrations import fly_client
from tests.previews.conftest import STAGING_SECRETS, preview_deploys, preview_of, secret_digest


def comments_on(world, number: int) -> list[dict]:
    return [c for c in world.github.comments.values() if c["number"] == number]


def test_opened_creates_app_deploys_a_machine_and_comments_once(world, driver, process_deliveries):
    pull = world.open_pull("feat: dark mode", "dark-mode")
    number = pull["number"]
    assert world.webhook.deliveries[-1]["status"] == 202
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail

    preview = preview_of(number)
    fly_app = f"hot-dash-pr-{number}"
    assert preview.environment.fly_app_name == fly_app
    assert preview.state == Preview.State.CREATING
    assert fly_app in world.fly.apps
    assert preview.secret_names == ["DATABASE_URL", "SECRET_KEY"]
    assert world.fly.secrets[fly_app]["SECRET_KEY"]["digest"] == secret_digest(
        STAGING_SECRETS["SECRET_KEY"]
    )
    [deploy] = preview_deploys(number)
    assert deploy.kind == Deploy.Kind.PREVIEW and deploy.state == Deploy.State.QUEUED
    assert deploy.commit_sha == pull["head_sha"]
    assert deploy.requested_by_system == "github"
    [comment] = comments_on(world, number)
    assert comment["body"].startswith(COMMENT_MARKER) and "deploying" in comment["body"]

    deploy = driver.run(deploy)
    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    with fly_client() as fly:
        [machine] = fly.list_machines(fly_app)
    assert machine.image == deploy.image_ref
    assert machine.config["guest"] == {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512}
    [service] = machine.config["services"]
    # Idle machines stop ("suspend" is Fly's stop-with-snapshot) and start on request.
    assert service["autostop"] == "stop" and service["autostart"] is True
    assert service["min_machines_running"] == 0

    assert preview_state_refresh(preview=preview) == Preview.State.RUNNING
    [comment] = comments_on(world, number)  # edited in place, never a second comment
    assert "**Live**" in comment["body"] and f"https://{fly_app}.fly.dev" in comment["body"]
    assert pull["head_sha"][:7] in comment["body"]
    assert AuditEvent.objects.filter(verb="preview.deployed", target_id=str(preview.pk)).exists()


def test_push_during_a_deploy_supersedes_it_and_only_the_newest_commit_deploys(
    world, driver, process_deliveries
):
    pull = world.open_pull("feat: search", "search")
    number = pull["number"]
    process_deliveries()
    [first] = preview_deploys(number)
    first = driver.run(first, until=lambda d: d.state == Deploy.State.RUNNING)
    assert first.state == Deploy.State.RUNNING

    newer = world.push_to_pull(number, "fix: typo")
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail
    first_again, second = preview_deploys(number)
    assert first_again.superseded_by_id == second.pk
    assert second.commit_sha == newer["head_sha"] and second.state == Deploy.State.QUEUED

    # The old deploy stops after its current batch; then the new one runs alone.
    assert driver.run(first_again).state == Deploy.State.SUPERSEDED
    assert driver.run(second).state == Deploy.State.SUCCEEDED
    with fly_client() as fly:
        [machine] = fly.list_machines(f"hot-dash-pr-{number}")
    assert machine.image == second.image_ref
    succeeded = [d for d in preview_deploys(number) if d.state == Deploy.State.SUCCEEDED]
    assert [d.commit_sha for d in succeeded] == [newer["head_sha"]]


def test_a_redelivered_synchronize_requests_no_second_deploy(world, process_deliveries, client):
    pull = world.open_pull("feat: search", "search")
    process_deliveries()
    world.push_to_pull(pull["number"], "fix: typo")
    process_deliveries()
    replay = world.webhook.deliveries[-1]
    status = world.webhook.sink(replay["headers"], replay["body"].encode())
    assert status == 200
    assert process_deliveries() == []
    assert len(preview_deploys(pull["number"])) == 2
    apps_created = world.calls(method="POST", path="/apps", service="fly")
    assert len(apps_created) == 1


def test_closed_destroys_the_app_updates_the_comment_and_keeps_the_record(
    world, process_deliveries
):
    pull = world.open_pull("feat: search", "search")
    number = pull["number"]
    process_deliveries()
    assert f"hot-dash-pr-{number}" in world.fly.apps

    world.close_pull(number, merge=True)
    deliveries = process_deliveries()  # pull_request.closed, then the merge's push
    assert [d.state for d in deliveries] == [WebhookDelivery.State.PROCESSED] * 2
    assert f"hot-dash-pr-{number}" not in world.fly.apps
    preview = preview_of(number)
    assert preview.state == Preview.State.DESTROYED and preview.destroyed_at is not None
    [comment] = comments_on(world, number)
    assert "**Destroyed**" in comment["body"]
    assert all(d.state == Deploy.State.CANCELLED for d in preview_deploys(number))
    event = AuditEvent.objects.get(verb="preview.destroyed", target_id=str(preview.pk))
    assert event.actor_name == "github" and event.data["reason"] == "pull request merged"


def test_closing_the_pr_during_a_deploy_ends_it_aborted_not_failed(
    world, driver, process_deliveries
):
    number = world.open_pull("feat: search", "search")["number"]
    process_deliveries()
    [deploy] = preview_deploys(number)
    deploy = driver.run(deploy, until=lambda d: d.state == Deploy.State.RUNNING)

    world.close_pull(number)
    process_deliveries()
    assert f"hot-dash-pr-{number}" not in world.fly.apps

    deploy = driver.run(deploy)
    assert deploy.state == Deploy.State.FAILED  # the engine's end state for an abort
    assert deploy.error.startswith("Aborted on request; the Fly app or machine is already gone")
    assert not Deploy.objects.filter(rollback_of=deploy).exists()
    verbs = AuditEvent.objects.filter(target_type="deploy", target_id=str(deploy.pk))
    assert verbs.filter(verb="deploy.aborted").count() == 1
    assert not verbs.filter(verb="deploy.failed").exists()


def test_reopened_pr_recreates_the_destroyed_preview(world, process_deliveries, post_delivery):
    pull = world.open_pull("feat: search", "search")
    number = pull["number"]
    process_deliveries()
    world.close_pull(number)
    process_deliveries()
    # The sandbox cannot reopen a PR; replay "opened" as "reopened" with the PR open again.
    world.github.pulls[number].update(state="open", closed_at=None)
    opened = world.webhook.deliveries[0]
    payload = {**json.loads(opened["body"]), "action": "reopened"}
    assert post_delivery("pull_request", payload).status_code == 202
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail
    assert preview_of(number).state == Preview.State.CREATING
    assert f"hot-dash-pr-{number}" in world.fly.apps
    assert len([d for d in preview_deploys(number) if d.state == Deploy.State.QUEUED]) == 1
    assert len(comments_on(world, number)) == 1


def test_draft_prs_are_skipped_unless_labelled_to_opt_in(world, process_deliveries, post_delivery):
    pull = world.open_pull("wip: rewrite", "rewrite", draft=True)
    number = pull["number"]
    [delivery] = process_deliveries()
    assert "draft" in delivery.detail
    assert not Preview.objects.filter(pr_number=number).exists()
    assert f"hot-dash-pr-{number}" not in world.fly.apps

    payload = json.loads(world.webhook.deliveries[-1]["body"])
    label = {"id": 1, "name": "preview", "color": "ededed"}
    payload.update(action="labeled", label=label)
    payload["pull_request"]["labels"] = [label]
    assert post_delivery("pull_request", payload).status_code == 202
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail
    assert preview_of(number).is_draft is True
    assert f"hot-dash-pr-{number}" in world.fly.apps
