"""Releases, release, rollback and Rollbacks pages, and GET /api/v1/apps/{app}/releases."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import AuditEvent
from deployments.models import RELEASE_DEPLOYABLE, Deploy, Environment, Release
from deployments.selectors.releases import (
    ReleaseFilters,
    release_blockers,
    release_tables,
    releases_by_app,
)
from deployments.services.releases import release_mark_bad
from deployments.services.tokens import api_token_create
from hotdash.links import github_url
from tests.engine.conftest import rollback_to_111


def versions(html: str) -> list[str]:
    return re.findall(r'id="release-\d+">\s*<td><a href="[^"]+">(v[^<]+)</a>', html)


def test_releases_page_orders_by_precedence_and_badges_what_is_live(
    client, demo, viewer, django_assert_max_num_queries
):
    client.force_login(viewer)
    with django_assert_max_num_queries(10):
        html = client.get(reverse("deployments:release-list")).content.decode()
    assert versions(html) == [
        "v1.3.1",
        "v1.3.0",
        "v1.3.0-rc.1",
        "v1.2.0",
        "v1.1.1",
        "v1.1.0",
        "v1.0.0",
    ]
    assert "production: v1.2.0" in html and "staging: v1.3.0" in html
    assert 'id="sync-hot-dash"' not in html  # viewers cannot sync


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"prereleases": "exclude"}, ["v1.3.1", "v1.3.0", "v1.2.0", "v1.1.1", "v1.1.0", "v1.0.0"]),
        ({"prereleases": "only"}, ["v1.3.0-rc.1"]),
        ({"environment": "staging"}, ["v1.3.0", "v1.3.0-rc.1", "v1.2.0", "v1.1.1"]),
        ({"deployable": "1", "environment": "production"}, ["v1.1.1", "v1.1.0", "v1.0.0"]),
    ],
)
def test_release_filters(client, demo, viewer, query, expected):
    release_mark_bad(release=demo.releases.get(version="1.2.0"), actor="system", reason="5xx")
    client.force_login(viewer)
    html = client.get(reverse("deployments:release-list"), query, HTTP_HX_REQUEST="true")
    assert html.content.decode().lstrip().startswith('<div id="release-tables">')
    assert versions(html.content.decode()) == expected


def test_a_deploy_on_a_preview_leaves_the_release_pipeline_as_it_was(client, demo, viewer):
    """The pipeline shows the long-lived environments only: a release's deploys on a preview
    (read with its others) change none of its stages."""
    release = demo.releases.get(version="1.3.1")
    (before,) = release_tables(apps=[demo], filters=ReleaseFilters(), newest=None)
    preview = Environment.objects.create(
        app=demo, name="pr-5", kind=Environment.Kind.PREVIEW, fly_app_name="hot-dash-pr-5"
    )
    for state in (Deploy.State.SUCCEEDED, Deploy.State.FAILED):
        Deploy.objects.create(
            environment=preview,
            release=release,
            state=state,
            reason="pr",
            requested_by_system="github",
        )

    (after,) = release_tables(apps=[demo], filters=ReleaseFilters(), newest=None)

    assert [line.pipeline for line in after.rows] == [line.pipeline for line in before.rows]
    client.force_login(viewer)
    html = client.get(reverse("deployments:release-list"), {"prereleases": "only"}).content
    assert b'<ol class="pipeline" aria-label="Where v1.3.0-rc.1 has run">' in html
    html = client.get(
        reverse("deployments:release-list"), {"prereleases": "only", "environment": "qa"}
    ).content.decode()
    assert versions(html) == [] and "No releases match." in html


def test_the_deployable_filter_picks_exactly_the_releases_that_say_they_are_deployable(demo):
    release_mark_bad(release=demo.releases.get(version="1.2.0"), actor="system", reason="5xx")
    Release.objects.filter(version="1.1.0").update(deleted_on_github_at=datetime.now(UTC))
    Release.objects.filter(version="1.0.0").update(validation=Release.Validation.PENDING)
    releases = list(Release.objects.all())
    said = {release.pk for release in releases if release.is_deployable}
    assert said and len(said) < len(releases) - 2
    assert set(Release.objects.filter(RELEASE_DEPLOYABLE).values_list("pk", flat=True)) == said


def test_the_releases_page_rows_say_what_the_releases_models_say(demo, admin_user):
    """The page reads plain values (release_tables); the API reads models (releases_by_app):
    the same releases, marks, reasons, pipelines and live environments."""
    release_mark_bad(release=demo.releases.get(version="1.2.0"), actor=admin_user, reason="5xx")
    Release.objects.filter(version="1.1.0").update(deleted_on_github_at=datetime.now(UTC))
    Release.objects.filter(version="1.0.0").update(validation=Release.Validation.PENDING)

    (table,) = release_tables(apps=[demo], filters=ReleaseFilters(), newest=None)
    (group,) = releases_by_app(apps=[demo])

    assert [env.name for env in table.environments] == [env.name for env in group.environments]
    assert [env.live_tag for env in table.environments] == [
        env.current_release.tag for env in group.environments
    ]
    seen = [
        (
            line.id,
            line.tag,
            line.is_prerelease,
            line.is_bad,
            line.deleted_on_github,
            line.is_deployable,
            line.blockers,
            line.validation,
            line.published_at,
            line.commit_sha,
            line.pipeline,
            line.live_in,
        )
        for line in table.rows
    ]
    assert seen == [
        (
            row.release.pk,
            row.release.tag,
            row.release.is_prerelease,
            row.release.is_bad,
            row.release.deleted_on_github_at is not None,
            row.release.is_deployable,
            release_blockers(row.release),
            row.release.validation,
            row.release.published_at,
            row.release.commit_sha,
            [(stage.environment.name, stage.outcome) for stage in row.pipeline],
            [env.name for env in row.live_in],
        )
        for row in group.rows
    ]
    reasons = {line.tag: line.blockers for line in table.rows}
    assert reasons["v1.2.0"] == [f"Marked bad by {admin_user.get_username()}: 5xx"]
    assert reasons["v1.1.0"][0].startswith("Deleted on GitHub on ")
    assert reasons["v1.0.0"] == ["Not validated yet."]
    assert {"succeeded"} <= {outcome for line in table.rows for _name, outcome in line.pipeline}


def test_release_page_says_exactly_why_it_is_not_deployable(client, demo, requester):
    release = demo.releases.get(version="1.3.0")
    release.validation = Release.Validation.INVALID
    release.validation_results = [
        {"check": "checksum", "ok": False, "message": "Checksum mismatch: file says 00."}
    ]
    release.save()
    client.force_login(requester)
    html = client.get(reverse("deployments:release-detail", args=[release.pk])).content.decode()
    assert 'id="release-blockers"' in html and "Checksum mismatch: file says 00." in html
    assert "Deploy to production" not in html  # no deploy action for an invalid release
    assert (
        'id="changelog-fixes"' in html
        and f'href="{github_url("hotdash-demo/hot-dash", "/pull/16")}"' in html
    )


def test_release_page_offers_deploy_and_rollback_actions(client, demo, requester):
    release = demo.releases.get(version="1.1.1")
    client.force_login(requester)
    html = client.get(reverse("deployments:release-detail", args=[release.pk])).content.decode()
    production = demo.environments.get(name="production")
    assert f"/environments/{production.pk}/rollback/?release={release.pk}" in html
    assert "Roll back production to v1.1.1" in html
    staging = demo.environments.get(name="staging")
    assert f'href="/deploys/new/?release={release.pk}&amp;environment={staging.pk}"' in html
    history = html.split('id="release-history"')[1]
    assert history.count('class="state state-healthy"') == 2  # live and healthy in both envs


def test_sync_now_reports_what_changed(client, demo, requester, sandbox):
    sandbox.publish_release("1.4.0")
    client.force_login(requester)
    response = client.post(reverse("deployments:release-sync"), {"app": "hot-dash"}, follow=True)
    html = response.content.decode()
    assert "Synced hot-dash: 8 release(s) on GitHub" in html and "v1.4.0" in html
    event = AuditEvent.objects.get(verb="release.synced")
    assert event.actor_name == "requester" and "v1.4.0" in event.data["stored"]


def test_sync_now_shows_a_github_failure(client, demo, requester, sandbox):
    sandbox.add_fault("status", service="github", path="/releases", status=503)
    client.force_login(requester)
    html = client.post(
        reverse("deployments:release-sync"), {"app": "hot-dash"}, follow=True
    ).content.decode()
    assert "Could not read releases of hotdash-demo/hot-dash from GitHub" in html


def test_clearing_a_bad_mark_needs_a_reason(client, demo, approver):
    release = release_mark_bad(
        release=demo.releases.get(version="1.2.0"), actor="system", reason="5xx"
    )
    client.force_login(approver)
    url = reverse("deployments:release-clear-bad", args=[release.pk])
    response = client.post(url, {"reason": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert response.content.decode().lstrip().startswith('<section class="card" id="bad-mark">')
    release.refresh_from_db()
    assert release.is_bad
    response = client.post(url, {"reason": "config fixed"}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == reverse("deployments:release-detail", args=[release.pk])
    release.refresh_from_db()
    assert not release.is_bad


def test_rollback_form_lists_targets_and_archives_older_ones(client, demo, requester):
    production = demo.environments.get(name="production")
    demo.rollback_targets_kept = 2
    demo.save()
    client.force_login(requester)
    html = client.get(reverse("deployments:rollback-form", args=[production.pk])).content.decode()
    targets = re.findall(
        r'<input type="radio" name="release" value="\d+" required\s*>\s*(v\S+)', html
    )
    assert targets == ["v1.1.1", "v1.1.0"]
    assert 'id="rollback-archived"' in html and "v1.0.0" in html
    assert "Type <code>hot-dash</code> to roll back production" in html
    assert "the rollback needs 1 approval(s)" in html  # a deployer gets no fast path


def test_rollback_form_says_when_each_target_stopped_being_live(client, demo, requester):
    production = demo.environments.get(name="production")
    ran = {d.release.version: d for d in production.deploys.select_related("release")}
    at = {
        "1.1.0": datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
        "1.1.1": datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        "1.2.0": datetime(2026, 3, 8, 12, 34, tzinfo=UTC),
    }
    for version, finished in at.items():
        Deploy.objects.filter(pk=ran[version].pk).update(finished_at=finished)
    # A redeploy of v1.1.1 and a failed deploy in between replaced nothing.
    for state, finished in (("succeeded", (3, 5)), ("failed", (3, 6))):
        again = ran["1.1.1"]
        again.pk, again.state = None, state
        again.finished_at = datetime(2026, *finished, 8, 0, tzinfo=UTC)
        again.save()
    client.force_login(requester)
    html = client.get(reverse("deployments:rollback-form", args=[production.pk])).content.decode()

    def last_live(version: str) -> str:
        pk = Release.objects.get(app=demo, version=version).pk
        return html.split(f'id="last-live-{pk}">')[1].split("</span>")[0]

    # When the next deploy that put something else live finished, not when it was deployed.
    assert '<time datetime="2026-03-08T12:34:00Z"' in last_live("1.1.1")
    assert ">2026-03-08 12:34 UTC</time>" in last_live("1.1.1")
    assert '<time datetime="2026-03-01T10:00:00Z"' in last_live("1.1.0")


def test_rollback_form_needs_the_app_name_on_production(client, demo, approver, sandbox):
    production = demo.environments.get(name="production")
    target = demo.releases.get(version="1.1.1")
    client.force_login(approver)
    url = reverse("deployments:rollback-form", args=[production.pk])
    response = client.post(url, {"release": target.pk, "reason": "5xx", "confirmation": "nope"})
    assert response.status_code == 422
    assert "Type the app name (hot-dash) to roll back production." in response.content.decode()
    assert not Deploy.objects.filter(kind=Deploy.Kind.ROLLBACK).exists()
    response = client.post(url, {"release": target.pk, "reason": "5xx", "confirmation": "hot-dash"})
    deploy = Deploy.objects.get(kind=Deploy.Kind.ROLLBACK)
    assert response["Location"] == reverse("deployments:deploy-detail", args=[deploy.pk])
    assert deploy.fast_path and deploy.reason == "5xx"


def test_rollback_form_shows_a_refusal_with_409(client, demo, approver, admin_user, sandbox):
    from deployments.services.environments import environment_lock

    staging = demo.environments.get(name="staging")
    environment_lock(environment=staging, actor=admin_user, reason="maintenance")
    client.force_login(approver)
    response = client.post(
        reverse("deployments:rollback-form", args=[staging.pk]),
        {"release": demo.releases.get(version="1.2.0").pk, "reason": "rc bad"},
    )
    assert response.status_code == 409
    html = response.content.decode()
    # A sentence for people, never the machine code.
    assert "Rollback refused</h2>" in html and "is locked" in html
    assert "environment_locked" not in html


def test_rollbacks_page_shows_who_why_from_to_outcome_and_health(
    client, demo, approver, viewer, sandbox, django_assert_max_num_queries
):
    from deployments.services.rollbacks import rollback_request

    staging = demo.environments.get(name="staging")
    deploy = rollback_request(
        environment=staging,
        release=demo.releases.get(version="1.2.0"),
        requested_by=approver,
        reason="rc broke login",
    )
    client.force_login(viewer)
    with django_assert_max_num_queries(12):
        html = client.get(reverse("deployments:rollback-list"), {"environment": staging.pk})
    row = html.content.decode().split(f'id="rollback-{deploy.pk}"')[1].split("</tr>")[0]
    for text in (
        "staging",
        "fast path",
        "v1.3.0",
        "v1.2.0",
        "approver",
        "rc broke login",
        "Queued",
        "pending",
    ):
        assert text in row
    assert "Will lock staging and mark v1.3.0 bad when it starts." in row
    assert "Locked by system" not in html.content.decode()  # queued, not started


def test_a_pending_rollback_says_on_its_drawer_and_page_what_approving_will_lock_and_mark(
    client, demo, requester, approver, sandbox
):
    rollback = rollback_to_111(demo.environments.get(name="production"), requester)
    client.force_login(approver)
    drawer = client.get(reverse("approvals:deploy-drawer", args=[rollback.pk])).content.decode()
    page = client.get(reverse("deployments:deploy-detail", args=[rollback.pk])).content.decode()
    for html in (drawer, page):
        hold = html[html.index('id="rollback-hold"') :]
        assert hold[: hold.index("</")].endswith(
            ">Will lock production and mark v1.2.0 bad when approved."
        )
    assert "hot-dash/production is not locked." in drawer


# --- the API ---------------------------------------------------------------------------------


def bearer(user) -> dict[str, str]:
    _, raw = api_token_create(user=user, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_api_lists_every_release_with_its_trust_facts(client, demo, viewer):
    release_mark_bad(release=demo.releases.get(version="1.1.0"), actor="system", reason="leak")
    response = client.get("/api/v1/apps/hot-dash/releases", **bearer(viewer))
    assert response.status_code == 200
    releases = response.json()["releases"]
    assert [r["version"] for r in releases] == [
        "1.3.1",
        "1.3.0",
        "1.3.0-rc.1",
        "1.2.0",
        "1.1.1",
        "1.1.0",
        "1.0.0",
    ]
    by_version = {r["version"]: r for r in releases}
    assert by_version["1.3.0-rc.1"]["prerelease"] and by_version["1.3.0-rc.1"]["live_in"] == []
    assert by_version["1.3.0"]["live_in"] == ["staging"]
    assert by_version["1.2.0"]["live_in"] == ["production"]
    bad = by_version["1.1.0"]
    assert bad["deployable"] is False and bad["bad_mark"]["reason"] == "leak"
    assert bad["not_deployable_because"] == ["Marked bad by system: leak"]
    assert {c["check"] for c in by_version["1.3.0"]["validation_results"]} == {
        "version_file",
        "artifact",
        "checksum",
        "image",
    }
    only_pre = client.get("/api/v1/apps/hot-dash/releases?prereleases=only", **bearer(viewer))
    assert [r["tag"] for r in only_pre.json()["releases"]] == ["v1.3.0-rc.1"]


def test_api_errors_are_json(client, demo, outsider, viewer):
    assert client.get("/api/v1/apps/hot-dash/releases").json()["error"]["code"] == (
        "unauthenticated"
    )
    response = client.get("/api/v1/apps/hot-dash/releases", **bearer(outsider))
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    response = client.get("/api/v1/apps/nope/releases", **bearer(viewer))
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_app"


def test_api_path_is_in_the_openapi_schema(client, db):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/apps/{app}/releases"]["get"]
    assert operation["operationId"] == "listAppReleases"


def test_release_page_offers_no_rollback_to_a_release_marked_bad(client, demo, requester):
    release = demo.releases.get(version="1.1.1")
    release_mark_bad(release=release, actor="system", reason="5xx")
    client.force_login(requester)
    html = client.get(reverse("deployments:release-detail", args=[release.pk])).content.decode()
    assert "Roll back to this release" not in html
    assert "/rollback/?release=" not in html


def test_release_page_history_is_one_query_whatever_its_length(
    client, demo, requester, approver, django_assert_num_queries
):
    release = demo.releases.get(version="1.2.0")
    client.force_login(requester)
    url = reverse("deployments:release-detail", args=[release.pk])
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    for environment in demo.environments.all():
        for who in (requester, approver, None):
            Deploy.objects.create(
                environment=environment,
                release=release,
                state=Deploy.State.FAILED,
                health_verified=False,
                health_summary="5xx on /healthz",
                reason="history",
                requested_by=who,
                requested_by_system="" if who else "github",
            )
    with django_assert_num_queries(len(before)):
        html = client.get(url).content.decode()
    history = html[html.index('id="release-history"') :]
    assert history.count("5xx on /healthz") == 3 * demo.environments.count()
    for name in (requester.get_username(), approver.get_username(), "github", "staging"):
        assert f"<td>{name}</td>" in history
