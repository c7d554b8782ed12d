"""What an operator sees after things go wrong: failed deploys and their rollbacks, bad marks
and locks where they matter, the self-refreshing previews table, and the 403 page."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from deployments.models import Deploy, DeployStep, Preview, Release
from deployments.services.environments import environment_lock
from hotdash.links import github_url
from tests.approvals.test_review_links import region

HTMX = {"HX-Request": "true"}


def _fail_first_batch(deploy: Deploy) -> tuple[DeployStep, DeployStep]:
    """Shape ``deploy`` as the engine leaves it when batch 1 fails its health checks."""
    first, second = deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).order_by("position")
    first.state = DeployStep.State.FAILED
    first.data["updated"] = first.data["machines"]
    first.detail = "Health checks failed after 55 s"
    first.save()
    deploy.steps.filter(position__gt=first.position).update(state=DeployStep.State.SKIPPED)
    now = timezone.now()
    deploy.state = Deploy.State.FAILED
    deploy.error = "Health checks failed after 55 s: GET /health: 500"
    deploy.health_summary = deploy.error
    deploy.health_verified = False
    deploy.started_at, deploy.finished_at = now - timezone.timedelta(seconds=75), now
    deploy.save()
    return first, second


def _auto_rollback(deploy: Deploy, machines: list[str], state: str) -> Deploy:
    rollback = Deploy.objects.create(
        environment=deploy.environment,
        release=deploy.previous_release,
        kind=Deploy.Kind.AUTO_ROLLBACK,
        state=state,
        requested_by_system="system",
        reason=f"Automatic rollback after deploy #{deploy.pk} failed",
        image_ref=deploy.previous_image_ref,
        rollback_of=deploy,
    )
    DeployStep.objects.create(
        deploy=deploy,
        position=deploy.steps.count() + 1,
        kind=DeployStep.Kind.ROLLBACK_MACHINES,
        title=f"Roll {', '.join(machines)} back",
        state=DeployStep.State.DONE,
        data={"machines": machines, "rollback_deploy": rollback.pk},
    )
    return rollback


def test_a_failed_deploy_says_what_failed_and_what_was_done(client, pending, viewer):
    deploy = pending.deploy
    first, second = _fail_first_batch(deploy)
    rollback = _auto_rollback(deploy, first.data["machines"], Deploy.State.RUNNING)
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-detail", args=[deploy.pk])).content.decode()

    outcome = html[html.index('id="deploy-outcome"') : html.index("<h2>Plan</h2>")]
    assert "What failed:" in outcome and first.title in outcome and "GET /health: 500" in outcome
    assert f'href="/deploys/{rollback.pk}/"' in outcome and "Automatic rollback" in outcome
    assert "Running" in outcome  # the rollback's own state, live
    untouched = second.data["machines"][0]
    assert f"Never changed, still on v1.2.0: {untouched}" in outcome
    # The error is said once, not repeated as a health line.
    assert html.count("GET /health: 500") == 1 and "Health: " not in html
    # A skipped batch shows no (misleadingly full) progress bar, and its machine is unchanged.
    assert f'aria-label="{second.title}"' not in html
    assert f"<code>{untouched}</code> " in html and "state-unchanged" in html
    assert "progress-failed" in html and "(1 min 15 s)" in html


def test_the_automatic_rollback_links_back_and_a_failed_one_is_loud(client, pending, viewer):
    deploy = pending.deploy
    first, _ = _fail_first_batch(deploy)
    rollback = _auto_rollback(deploy, first.data["machines"], Deploy.State.FAILED)
    rollback.error = "Health checks failed on the previous image too"
    rollback.save()
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-detail", args=[rollback.pk])).content.decode()
    assert f'<a href="/deploys/{deploy.pk}/">deploy #{deploy.pk}</a>' in html
    assert "an automatic rollback is never itself rolled back" in html
    assert reverse("deployments:rollback-form", args=[deploy.environment_id]) in html


def test_a_succeeded_deploy_rolled_back_later_says_so(client, pending, viewer):
    deploy = pending.deploy
    Deploy.objects.filter(pk=deploy.pk).update(state=Deploy.State.SUCCEEDED)
    later = Deploy.objects.create(
        environment=deploy.environment,
        release=deploy.previous_release,
        kind=Deploy.Kind.ROLLBACK,
        state=Deploy.State.QUEUED,
        requested_by=viewer,
        reason="incident",
        rollback_of=deploy,
    )
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-detail", args=[deploy.pk])).content.decode()
    assert "Rolled back later:" in html and f'id="rolled-back-by-{later.pk}"' in html
    assert "What failed" not in html


def test_environment_page_offers_rollback_and_shows_lock_and_bad_marks(
    client, production, requester, viewer, admin_user, v130
):
    v130.bad_marked_at, v130.bad_reason = timezone.now(), "slow search"
    v130.save()
    production.current_release = v130
    production.save()
    environment_lock(environment=production, actor=admin_user, reason="incident 9")
    url = reverse("deployments:environment-detail", args=[production.pk])

    client.force_login(requester)
    html = client.get(url).content.decode()
    assert reverse("deployments:rollback-form", args=[production.pk]) in html
    assert "a deploy request will be refused unless an admin overrides the lock" in html
    assert 'id="live-bad-mark"' in html
    bad = html[html.index('id="bad-releases"') :]
    assert "v1.3.0" in bad and "slow search" in bad
    assert "<th>Kind</th>" in html

    client.force_login(viewer)
    html = client.get(url).content.decode()
    assert reverse("deployments:rollback-form", args=[production.pk]) not in html
    assert 'id="live-bad-mark"' in html  # the bad mark is shown to everyone


def test_overview_marks_a_bad_live_release_and_names_rollbacks(client, production, viewer, v130):
    v130.bad_marked_at, v130.bad_reason = timezone.now(), "slow search"
    v130.save()
    production.current_release = v130
    production.save()
    Deploy.objects.create(
        environment=production,
        release=v130,
        kind=Deploy.Kind.AUTO_ROLLBACK,
        state=Deploy.State.QUEUED,
        requested_by_system="system",
        reason="auto",
    )
    client.force_login(viewer)
    html = client.get(reverse("overview")).content.decode()
    row = html[html.index(f'id="environment-{production.pk}"') :]
    assert 'title="slow search">marked bad</span>' in row
    assert "Automatic rollback to v1.3.0" in row


def test_release_page_does_not_offer_a_rollback_to_a_bad_release(
    client, sandbox, demo, production, requester
):
    v110 = Release.objects.get(app=demo, version="1.1.0")
    url = reverse("deployments:release-detail", args=[v110.pk])
    rollback_url = reverse("deployments:rollback-form", args=[production.pk])
    client.force_login(requester)
    assert rollback_url in client.get(url).content.decode()
    v110.bad_marked_at, v110.bad_reason = timezone.now(), "corrupts sessions"
    v110.save()
    assert rollback_url not in client.get(url).content.decode()


def test_previews_table_refreshes_itself(client, demo, viewer):
    url = reverse("deployments:preview-list")
    client.force_login(viewer)
    # Idle: no polling at all.
    assert "hx-trigger" not in region(client.get(url).content.decode(), "preview-table")
    Preview.objects.create(app=demo, pr_number=7, pr_title="Dark mode")
    page = client.get(url).content.decode()
    assert 'hx-trigger="every 5s" data-poll-visible' in page and "<html" in page
    table = client.get(url, headers=HTMX).content.decode()
    assert table.lstrip().startswith('<section id="preview-table"') and "Dark mode" in table
    assert "<html" not in table


def test_refusals_render_inside_the_layout(client, viewer):
    client.force_login(viewer)
    response = client.get(reverse("deployments:deploy-new"))
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="forbidden"' in html and "Your role does not allow this." in html
    assert "signed in as <strong>viewer</strong> (viewer)" in html
    assert 'aria-label="Main"' in html  # the navigation is there to go elsewhere


def test_drawer_links_the_pull_requests_of_the_commits(client, pending, approver):
    client.force_login(approver)
    html = client.get(reverse("approvals:drawer", args=[pending.pk])).content.decode()
    commits = html[html.index('id="h-changelog"') : html.index('id="h-plan"')]
    pull = github_url("hotdash-demo/hot-dash", "/pull/17")  # the sandbox's page in sandbox mode
    assert f'<a href="{pull}" rel="noopener">#17</a>' in commits


def test_environment_page_flags_a_release_that_just_failed_there(
    client, pending, production, requester
):
    deploy = pending.deploy
    _fail_first_batch(deploy)
    client.force_login(requester)
    html = client.get(reverse("deployments:environment-detail", args=[production.pk])).content
    html = html.decode()
    flag = html[html.index(f'id="failed-here-{deploy.release_id}"') :]
    assert flag.startswith(
        f'id="failed-here-{deploy.release_id}">failed here in <a href="/deploys/'
    )


def test_a_decided_drawer_shows_what_was_live_when_asked(client, pending, approver, production):
    from approvals.services import approval_decide

    approval_decide(request=pending, user=approver, verdict="approve", comment="", ip=None)
    Deploy.objects.filter(pk=pending.deploy_id).update(state=Deploy.State.SUCCEEDED)
    production.refresh_from_db()
    production.current_release = pending.deploy.release
    production.save()
    client.force_login(approver)
    html = client.get(reverse("approvals:drawer", args=[pending.pk])).content.decode()
    assert "<dt>Live when asked</dt><dd>v1.2.0</dd>" in html and "Live now" not in html


def test_a_failed_preview_deploy_says_previews_are_not_rolled_back(client, pending, viewer):
    deploy = pending.deploy
    _fail_first_batch(deploy)
    Deploy.objects.filter(pk=deploy.pk).update(
        kind=Deploy.Kind.PREVIEW, abort_requested_at=timezone.now()
    )
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-detail", args=[deploy.pk])).content.decode()
    assert "Previews are not rolled back: the next push" in html
    assert '<span class="lock">aborted</span>' in html and "abort requested" not in html


def test_a_409_redraws_the_whole_drawer_with_the_decision(
    client, pending, approver, second_approver
):
    decide = reverse("approvals:decide", args=[pending.pk])
    client.force_login(approver)
    client.post(decide, {"decision": "approve", "comment": "ship"}, headers=HTMX)
    client.force_login(second_approver)
    response = client.post(decide, {"decision": "approve", "comment": ""}, headers=HTMX)
    assert response.status_code == 409
    assert response["HX-Retarget"] == "#drawer-root" and response["HX-Reswap"] == "innerHTML"
    html = response.content.decode()
    assert html.lstrip().startswith('<dialog id="approval-drawer" data-drawer')
    # No stale "pending" facts: the header badge, the count and the decisions are current.
    assert "state-pending" not in html and "1 of 1 · closed" in " ".join(html.split())
    assert "This request is already approved." in html and "“ship”" in html


def test_the_deploy_page_says_who_decided_and_why(client, pending, approver, requester):
    from approvals.services import approval_decide

    approval_decide(
        request=pending, user=approver, verdict="reject", comment="wrong version", ip=None
    )
    client.force_login(requester)
    url = reverse("deployments:deploy-detail", args=[pending.deploy_id])
    html = client.get(url, headers=HTMX).content.decode()
    assert "· approver rejected: “wrong version”" in html


def test_going_back_to_a_filtered_releases_url_restores_the_whole_page(client, demo, viewer):
    url = reverse("deployments:release-list") + "?prereleases=exclude"
    client.force_login(viewer)
    tables = client.get(url, headers=HTMX).content.decode()
    assert "<html" not in tables and tables.lstrip().startswith('<div id="release-tables"')
    restored = client.get(url, headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in restored.content.decode()


def test_rollbacks_page_marks_a_bad_live_release(client, production, viewer, v130):
    v130.bad_marked_at, v130.bad_reason = timezone.now(), "slow search"
    v130.save()
    production.current_release = v130
    production.save()
    client.force_login(viewer)
    html = client.get(reverse("deployments:rollback-list")).content.decode()
    row = html[html.index(f'<tr id="environment-{production.pk}">') :]
    assert 'title="slow search">marked bad</span>' in row[: row.index("</tr>")]
