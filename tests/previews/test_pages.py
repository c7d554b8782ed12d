"""The Previews page and its actions (redeploy, wake, destroy), as people use them."""

from __future__ import annotations

from django.urls import reverse

from approvals.models import AuditEvent
from deployments.models import Deploy, Preview
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
    assert "DATABASE_URL, SECRET_KEY" in html and "Deploying" in html
    assert "Redeploy" not in html  # a viewer gets no buttons


def test_actions_answer_htmx_with_the_row(world, driver, process_deliveries, client, requester):
    number = world.open_pull("feat: page", "page")["number"]
    process_deliveries()
    [deploy] = preview_deploys(number)
    assert driver.run(deploy).state == Deploy.State.SUCCEEDED
    preview = preview_of(number)
    client.force_login(requester)

    woke = client.post(reverse("deployments:preview-wake", args=[preview.pk]), **HTMX)
    assert woke.status_code == 200
    assert woke.content.decode().lstrip().startswith(f'<tr id="preview-{preview.pk}"')
    assert "Preview woken." in woke.content.decode()

    redeploy = client.post(reverse("deployments:preview-redeploy", args=[preview.pk]), **HTMX)
    assert redeploy.status_code == 200, redeploy.content
    latest = preview_deploys(number)[-1]
    assert latest.requested_by == requester and latest.state == Deploy.State.QUEUED

    destroyed = client.post(reverse("deployments:preview-destroy", args=[preview.pk]), **HTMX)
    assert destroyed.status_code == 200 and "Destroyed" in destroyed.content.decode()
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
