"""The Previews page and its actions (redeploy, wake, destroy), as people use them."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.test import Client
from django.urls import reverse

from approvals.models import AuditEvent
from deployments.models import Deploy, Preview
from deployments.services.previews import preview_state_refresh
from hotdash.integrations import fly_client
from tests.previews.conftest import preview_deploys, preview_of

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_page_lists_every_preview_escaped_in_bounded_queries(
    world, process_deliveries, client, viewer, django_assert_max_num_queries
):
    for index in range(4):
        world.open_pull(f"<img src=x onerror=alert({index})>", f"branch-{index}")
    process_deliveries()
    client.force_login(viewer)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("deployments:preview-list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(3)&gt;" in html
    for preview in Preview.objects.all():
        assert f'id="preview-{preview.pk}"' in html
        assert preview.url in html
        [deploy] = preview_deploys(preview.pr_number)
        assert reverse("deployments:deploy-detail", args=[deploy.pk]) in html
    assert "DATABASE_URL, SECRET_KEY" in html and ">Creating</span>" in html
    assert ">Redeploy</button>" not in html  # a viewer gets no buttons


def test_actions_answer_htmx_with_the_row(world, driver, process_deliveries, client, requester):
    number = world.open_pull("feat: page", "page")["number"]
    process_deliveries()
    [deploy] = preview_deploys(number)
    assert driver.run(deploy).state == Deploy.State.SUCCEEDED
    preview = preview_of(number)
    client.force_login(requester)

    awake = client.post(reverse("deployments:preview-wake", args=[preview.pk]), **HTMX)
    assert awake.status_code == 409
    assert awake.content.decode().lstrip().startswith(f'<tr id="preview-{preview.pk}"')
    assert "Nothing to wake: every machine of this preview is running." in awake.content.decode()
    assert not AuditEvent.objects.filter(verb="preview.woken").exists()

    redeploy = client.post(reverse("deployments:preview-redeploy", args=[preview.pk]), **HTMX)
    assert redeploy.status_code == 200, redeploy.content
    latest = preview_deploys(number)[-1]
    assert latest.requested_by == requester and latest.state == Deploy.State.QUEUED

    destroyed = client.post(reverse("deployments:preview-destroy", args=[preview.pk]), **HTMX)
    assert destroyed.status_code == 200 and ">Destroyed</span>" in destroyed.content.decode()
    assert preview_of(number).state == Preview.State.DESTROYED
    assert f"hot-dash-pr-{number}" not in world.fly.apps
    assert preview_deploys(number)[-1].state == Deploy.State.CANCELLED
    event = AuditEvent.objects.get(verb="preview.destroyed")
    assert event.actor_name == "requester" and event.ip == "127.0.0.1"

    again = client.post(reverse("deployments:preview-redeploy", args=[preview.pk]), **HTMX)
    assert again.status_code == 409 and "destroyed" in again.content.decode()


def test_destroy_without_javascript_confirms_on_a_page_first(
    world, process_deliveries, client, requester, viewer
):
    number = world.open_pull("feat: plain", "plain")["number"]
    process_deliveries()
    preview = preview_of(number)
    fly_app = f"hot-dash-pr-{number}"
    url = reverse("deployments:preview-destroy", args=[preview.pk])
    client.force_login(requester)
    page = client.get(reverse("deployments:preview-list")).content.decode()
    # Without JavaScript the button GETs the confirmation page; htmx confirms, then POSTs.
    assert f'<form method="get" action="{url}" hx-post="{url}"' in page
    assert f'hx-confirm="Destroy the preview of PR #{number}?"' in page

    confirm = client.get(url)
    html = confirm.content.decode()
    assert confirm.status_code == 200
    assert f"{fly_app} and its machines are deleted" in html
    [deploy] = preview_deploys(number)
    assert reverse("deployments:deploy-detail", args=[deploy.pk]) in html
    assert f'<form method="post" action="{url}"' in html and "csrfmiddlewaretoken" in html
    assert fly_app in world.fly.apps and preview_of(number).state == Preview.State.CREATING
    assert not AuditEvent.objects.filter(verb="preview.destroyed").exists()

    response = client.post(url, follow=True)
    assert response.redirect_chain == [(reverse("deployments:preview-list"), 302)]
    assert "Preview destroyed." in response.content.decode()
    assert preview_of(number).state == Preview.State.DESTROYED and fly_app not in world.fly.apps
    assert "already destroyed" in client.get(url).content.decode()

    client.force_login(viewer)
    assert client.get(url).status_code == 403


def test_the_preview_page_shows_its_facts_and_deploys(
    world, process_deliveries, client, viewer, django_assert_max_num_queries
):
    number = world.open_pull("feat: <b>bold</b>", "bold")["number"]
    process_deliveries()
    preview = preview_of(number)
    client.force_login(viewer)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("deployments:preview-detail", args=[preview.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "feat: &lt;b&gt;bold&lt;/b&gt;" in html and preview.head_sha in html
    [deploy] = preview_deploys(number)
    assert reverse("deployments:deploy-detail", args=[deploy.pk]) in html
    assert "DATABASE_URL, SECRET_KEY" in html
    assert "Destroy this preview" not in html  # a viewer gets no actions
    # The title is plain text; the states' explanation is in the page, once.
    assert f"<title>Preview of PR #{number} · HotDash</title>" in html
    assert html.count('id="preview-states"') == 1


def _actions(html: str) -> set[str]:
    section = html.split('id="preview-actions"', 1)[1].split("</div>", 1)[0]
    return {name for name in ("Redeploy", "Wake", "Destroy") if f">{name}</button>" in section}


def test_the_preview_page_links_the_pr_and_shows_the_posted_comment(
    world, driver, process_deliveries, client, viewer
):
    number = world.open_pull("feat: linked", "linked")["number"]
    process_deliveries()
    [deploy] = preview_deploys(number)
    assert driver.run(deploy).state == Deploy.State.SUCCEEDED
    assert preview_state_refresh(preview=preview_of(number)) == Preview.State.RUNNING
    preview = preview_of(number)
    [posted] = [c for c in world.github.comments.values() if c["number"] == number]
    assert preview.comment_body == posted["body"]  # stored as posted, edit after edit
    client.force_login(viewer)
    html = client.get(reverse("deployments:preview-detail", args=[preview.pk])).content.decode()
    repository = f"{preview.app.github_owner}/{preview.app.github_repo}"
    assert f'href="{settings.GITHUB_WEB_URL}/{repository}/pull/{number}"' in html
    comment = html.split('<pre class="comment-body">', 1)[1].split("</pre>", 1)[0]
    assert comment.startswith("### HotDash preview: **Live**")
    assert "Deployed and awake: the URL answers at once." in comment
    assert "hotdash:preview" not in comment  # the hidden marker is not shown
    assert ">Live</span>" in html and "Deployed and awake" in html


def test_the_preview_page_offers_only_the_actions_that_make_sense(
    world, driver, process_deliveries, client, requester
):
    number = world.open_pull("feat: actions", "actions")["number"]
    process_deliveries()
    preview = preview_of(number)
    url = reverse("deployments:preview-detail", args=[preview.pk])
    client.force_login(requester)
    # Creating, its build registered: redeploy and destroy; nothing asleep to wake.
    assert _actions(client.get(url).content.decode()) == {"Redeploy", "Destroy"}

    [deploy] = preview_deploys(number)
    assert driver.run(deploy).state == Deploy.State.SUCCEEDED
    assert preview_state_refresh(preview=preview_of(number)) == Preview.State.RUNNING
    assert _actions(client.get(url).content.decode()) == {"Redeploy", "Destroy"}
    fly_app = preview_of(number).environment.fly_app_name
    with fly_client() as fly:
        [machine] = fly.list_machines(fly_app)
        fly.stop_machine(fly_app, machine.id)
    driver.tick(30)
    assert preview_state_refresh(preview=preview_of(number)) == Preview.State.SLEEPING
    assert _actions(client.get(url).content.decode()) == {"Redeploy", "Wake", "Destroy"}

    # Wake from the page (no JavaScript): back on the page, awake, no Wake any more.
    response = client.post(
        reverse("deployments:preview-wake", args=[preview.pk]), {"from": "detail"}, follow=True
    )
    assert response.redirect_chain == [(url, 302)]
    assert "Preview woken." in response.content.decode()
    assert _actions(response.content.decode()) == {"Redeploy", "Destroy"}

    # A new commit without a build yet: nothing to redeploy.
    Preview.objects.filter(pk=preview.pk).update(head_sha="f" * 40)
    assert _actions(client.get(url).content.decode()) == {"Destroy"}

    client.post(reverse("deployments:preview-destroy", args=[preview.pk]))
    assert _actions(client.get(url).content.decode()) == set()


def test_redeploy_and_wake_need_a_deployer_and_csrf(world, process_deliveries, viewer, requester):
    number = world.open_pull("feat: guarded", "guarded")["number"]
    process_deliveries()
    preview = preview_of(number)
    before = len(preview_deploys(number))
    viewer_client = Client()
    viewer_client.force_login(viewer)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(requester)
    for name in ("preview-redeploy", "preview-wake"):
        url = reverse(f"deployments:{name}", args=[preview.pk])
        assert viewer_client.post(url).status_code == 403
        assert strict.post(url).status_code == 403
    assert len(preview_deploys(number)) == before
    assert not AuditEvent.objects.filter(verb="preview.woken").exists()


def test_every_preview_state_has_one_label_and_description_shown_on_the_pages(
    world, process_deliveries, client, viewer
):
    world.open_pull("feat: words", "words")
    process_deliveries()
    client.force_login(viewer)
    listing = client.get(reverse("deployments:preview-list")).content.decode()
    detail = client.get(
        reverse("deployments:preview-detail", args=[Preview.objects.get().pk])
    ).content.decode()
    for state in Preview.State:
        assert state.label and state.description.endswith(".")
        for html in (listing, detail):
            assert f">{state.label}</span></dt><dd>{state.description}</dd>" in html
    docs = (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text()
    for state in Preview.State:
        assert f"| {state.label} | `{state.value}` | {state.description} |" in docs
