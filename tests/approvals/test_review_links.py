"""Every page listing a deploy that awaits approval reaches the drawer (a link to the page
without JavaScript, fetched into the drawer with htmx) and refreshes its list after a decision;
the lists other people decide in also poll."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from deployments.models import Deploy
from deployments.services.rollbacks import rollback_request

HTMX = {"HX-Request": "true"}


def review_link(deploy: Deploy) -> str:
    url = reverse("approvals:deploy-drawer", args=[deploy.pk])
    return f'<a href="{url}" hx-get="{url}" hx-target="#drawer-root" hx-swap="innerHTML">Review</a>'


def without_csrf_tokens(html: str) -> str:
    """CSRF tokens are masked afresh for every response."""
    return re.sub(r"[A-Za-z0-9]{64}", "…", html)


def region(html: str, element_id: str) -> str:
    """The opening tag of the element with ``element_id``."""
    return re.search(rf'<[a-z]+ [^>]*id="{element_id}"[^>]*>', html)[0]


def pages(pending, production) -> dict[str, str]:
    return {
        "release-history": reverse("deployments:release-detail", args=[pending.deploy.release_id]),
        "overview-apps": reverse("overview"),
        "environment-deploys": reverse("deployments:environment-detail", args=[production.pk]),
        "deploy-table": reverse("deployments:deploy-list"),
    }


def test_pages_listing_a_pending_deploy_link_it_into_the_drawer(
    client, pending, production, viewer
):
    client.force_login(viewer)
    for element_id, url in pages(pending, production).items():
        html = client.get(url).content.decode()
        assert review_link(pending.deploy) in html, url
        assert "approval-decided from:body" in region(html, element_id), url


def test_the_overview_region_is_its_own_partial_and_polls_once_a_deploy_is_queued(
    client, pending, production, approver
):
    client.force_login(approver)
    url = pages(pending, production)["overview-apps"]
    tag = region(client.get(url).content.decode(), "overview-apps")
    assert f'hx-get="{url}"' in tag and 'hx-disinherit="*"' in tag and "every" not in tag
    client.post(reverse("approvals:decide", args=[pending.pk]), {"decision": "approve"})
    refreshed = client.get(url, headers=HTMX).content.decode()
    assert refreshed.lstrip().startswith('<div id="overview-apps"')
    assert "every 3s" in region(refreshed, "overview-apps")
    assert review_link(pending.deploy) not in refreshed and "Queued" in refreshed


@pytest.mark.parametrize("element_id", ["release-history"])
def test_whole_page_regions_pick_themselves_out_of_the_page_and_update(
    client, pending, production, approver, element_id
):
    """These views render whole pages: the region fetches its page and selects itself, and
    children (the Review link) inherit none of it."""
    client.force_login(approver)
    url = pages(pending, production)[element_id]
    tag = region(client.get(url).content.decode(), element_id)
    assert f'hx-get="{url}"' in tag and f'hx-select="#{element_id}"' in tag
    assert 'hx-swap="outerHTML"' in tag and 'hx-disinherit="*"' in tag
    client.post(reverse("approvals:decide", args=[pending.pk]), {"decision": "approve"})
    refreshed = client.get(url, headers=HTMX).content.decode()
    assert region(refreshed, element_id) == tag
    assert review_link(pending.deploy) not in refreshed and "Queued" in refreshed


def test_a_pending_rollback_is_reviewable_from_the_rollbacks_page(
    client, demo, sandbox, production, requester, approver
):
    rollback = rollback_request(
        environment=production,
        release=demo.releases.get(version="1.1.1"),
        requested_by=requester,
        reason="5xx after 1.2.0",
        confirmation="hot-dash",
    )
    assert rollback.state == Deploy.State.AWAITING_APPROVAL
    client.force_login(approver)
    url = reverse("deployments:rollback-list") + f"?environment={production.pk}"
    html = client.get(url).content.decode()
    assert review_link(rollback) in html
    tag = region(html, "rollback-history")
    assert f'hx-get="{url}"' in tag and 'hx-select="#rollback-history"' in tag
    assert 'hx-trigger="approval-decided from:body"' in tag
    drawer = client.get(reverse("approvals:deploy-drawer", args=[rollback.pk])).content.decode()
    assert "Commits taken away (in v1.2.0, not in v1.1.1)" in drawer
    assert "approval drawer" in drawer  # a v1.2.0 commit that goes away


def test_the_drawer_by_deploy_is_the_same_drawer(client, pending, approver):
    client.force_login(approver)
    by_deploy = reverse("approvals:deploy-drawer", args=[pending.deploy_id])
    by_request = reverse("approvals:drawer", args=[pending.pk])
    for headers in (HTMX, {}):
        html, same = (
            client.get(url, headers=headers).content.decode() for url in (by_deploy, by_request)
        )
        assert without_csrf_tokens(html) == without_csrf_tokens(same)
        assert 'value="approve"' in html
    assert client.get(reverse("approvals:deploy-drawer", args=[999999])).status_code == 404


def test_open_lists_poll_while_the_page_is_visible(client, pending, production, viewer):
    client.force_login(viewer)
    polling = 'hx-trigger="approval-decided from:body, every 30s" data-poll-visible'
    queue = client.get(reverse("approvals:queue"), headers=HTMX).content.decode()
    assert polling in region(queue, "pending-list")
    url = reverse("deployments:environment-detail", args=[production.pk])
    deploys = client.get(url, headers=HTMX).content.decode()
    assert deploys.lstrip().startswith('<section id="environment-deploys"')
    # Nothing runs there: the region refreshes on decisions only, not on a timer.
    idle = 'hx-trigger="approval-decided from:body" data-poll-visible data-busy="false"'
    assert idle in region(deploys, "environment-deploys")


def test_review_links_cost_no_query_per_pending_deploy(
    client, request_deploy, staging, production, viewer, django_assert_max_num_queries
):
    """The links use the deploy's id: more pending deploys, same number of queries."""
    client.force_login(viewer)
    request_deploy()
    with django_assert_max_num_queries(12) as one:
        client.get(reverse("overview"))
    staging.approvals_required = 1
    staging.save(update_fields=["approvals_required"])
    request_deploy(environment=staging)
    with django_assert_max_num_queries(len(one.captured_queries)):
        html = client.get(reverse("overview")).content.decode()
    assert html.count(">Review</a>") == 2
