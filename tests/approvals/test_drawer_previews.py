"""The drawer links the previews of the pull requests a release brings, found through the PR
numbers of its changelog (a merge or squash commit never is a preview's head commit)."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from deployments.models import Preview, Release, WebhookDelivery
from deployments.services.releases import release_sync
from hotdash.links import outside_url
from tests.fixtures.promotion import rehearse
from tests.webhooks import conftest as webhook_fixtures

hooked_sandbox = webhook_fixtures.hooked_sandbox
process_deliveries = webhook_fixtures.process_deliveries

HTMX = {"HX-Request": "true"}


def test_drawer_links_the_previews_of_the_prs_in_the_release_live_ones_first(
    client, demo, hooked_sandbox, process_deliveries, request_deploy, approver
):
    sandbox = hooked_sandbox
    merged = sandbox.open_pull("fix: retry sync", "retry-sync")["number"]
    still_open = sandbox.open_pull("feat: dark mode", "dark-mode")["number"]
    unrelated = sandbox.open_pull("feat: unrelated", "unrelated")["number"]
    deliveries = process_deliveries()
    sandbox.close_pull(merged, merge=True)
    sandbox.publish_release(
        "1.4.0",
        commits=[f"feat: dark mode (#{still_open})", "chore: bump version"],
    )
    deliveries += process_deliveries()
    assert {d.state for d in deliveries} <= {
        WebhookDelivery.State.PROCESSED,
        WebhookDelivery.State.IGNORED,
    }, [d.detail for d in deliveries]
    release_sync(app=demo, actor="system")
    release = Release.objects.get(app=demo, version="1.4.0")
    assert Preview.objects.get(pr_number=merged).state == Preview.State.DESTROYED
    live_preview = Preview.objects.get(pr_number=still_open)
    assert live_preview.head_sha != release.commit_sha

    rehearse(release, finished_at=timezone.now() - timedelta(hours=1))
    deploy = request_deploy(release=release)
    client.force_login(approver)
    url = reverse("approvals:drawer", args=[deploy.approval_request.pk])
    for html in (client.get(url, headers=HTMX).content.decode(), client.get(url).content.decode()):
        previews = html[html.index('<ul class="plain" id="previews">') :]
        previews = previews[: previews.index("</ul>")]
        # In sandbox mode the preview's fly.dev address leads to the sandbox's page of the app.
        link = (
            f'<a href="{outside_url(f"https://hot-dash-pr-{still_open}.fly.dev")}" rel="noopener">'
        )
        assert link in previews and f"PR #{still_open} feat: dark mode" in previews
        gone = f"PR #{merged} fix: retry sync: preview destroyed"
        assert gone in previews and previews.index(link) < previews.index(gone)
        assert f"hot-dash-pr-{merged}" not in previews  # no dead link
        assert f"PR #{unrelated}" not in previews
