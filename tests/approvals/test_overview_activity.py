"""The overview and the environment page tell the truth about what ran, runs and waits, and
keep themselves current while something runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from deployments.models import Deploy, Environment, Release
from tests.approvals.test_review_links import region

HTMX = {"HX-Request": "true"}
State = Deploy.State


@pytest.fixture
def make_deploy(production, v130, requester):
    def make(state: str, *, kind: str = Deploy.Kind.DEPLOY, started: bool, **extra) -> Deploy:
        now = timezone.now()
        return Deploy.objects.create(
            environment=production,
            release=extra.pop("release", v130),
            kind=kind,
            state=state,
            requested_by=requester,
            reason="test",
            queued_at=now,
            started_at=now if started else None,
            finished_at=now if started and state in Deploy.TERMINAL_STATES else None,
            **extra,
        )

    return make


def _overview(client) -> str:
    return client.get(reverse("overview"), headers=HTMX).content.decode()


def _cell(html: str, environment: Environment, label: str) -> str:
    row = html.split(f'id="environment-{environment.pk}"')[1].split("</tr>")[0]
    return row.split(f'data-label="{label}">')[1].split("</td>")[0]


def test_a_request_that_never_ran_does_not_hide_the_live_deploy(
    client, viewer, production, make_deploy
):
    client.force_login(viewer)
    seeded = production.deploys.get(release=production.current_release)
    cancelled = make_deploy(State.CANCELLED, started=False)
    rejected = make_deploy(State.REJECTED, started=False)
    last = _cell(_overview(client), production, "Last deploy")
    assert f'id="last-{seeded.pk}"' in last
    assert f"#{cancelled.pk}<" not in last and f"#{rejected.pk}<" not in last


def test_a_failed_deploy_and_its_automatic_rollback_both_show_failure_first(
    client, viewer, production, make_deploy, demo
):
    client.force_login(viewer)
    failed = make_deploy(State.FAILED, started=True)
    rollback = make_deploy(
        State.SUCCEEDED,
        kind=Deploy.Kind.AUTO_ROLLBACK,
        started=True,
        rollback_of=failed,
        release=Release.objects.get(app=demo, version="1.2.0"),
    )
    rollback.finished_at = failed.finished_at + timedelta(seconds=30)
    rollback.save(update_fields=["finished_at"])
    last = _cell(_overview(client), production, "Last deploy")
    assert last.index(f'id="last-{failed.pk}"') < last.index(f'id="last-{rollback.pk}"')
    assert "Failed" in last and "Automatic rollback to v1.2.0" in last


def test_the_overview_follows_a_running_deploy_and_stops_polling_when_idle(
    client, viewer, production, make_deploy
):
    client.force_login(viewer)
    idle = _overview(client)
    assert "every" not in region(idle, "overview-apps")
    assert "idle" in _cell(idle, production, "Now")

    running = make_deploy(State.RUNNING, started=True)
    waiting = make_deploy(State.QUEUED, started=False)
    busy = _overview(client)
    assert busy.lstrip().startswith('<div id="overview-apps"') and "<html" not in busy
    assert 'every 3s" data-poll-visible' in region(busy, "overview-apps")
    now = _cell(busy, production, "Now")
    assert now.index(f'id="running-{running.pk}"') < now.index("Queued behind it")
    assert now.index("Queued behind it") < now.index(f'id="queued-{waiting.pk}"')

    for deploy in (running, waiting):
        deploy.state, deploy.started_at, deploy.finished_at = (
            State.SUCCEEDED,
            deploy.started_at or timezone.now(),
            timezone.now() + timedelta(seconds=deploy.pk),
        )
        deploy.save()
    done = _overview(client)
    assert "every" not in region(done, "overview-apps")
    assert f'id="last-{waiting.pk}"' in _cell(done, production, "Last deploy")


def test_the_environment_page_shows_what_runs_and_polls_only_then(
    client, viewer, production, make_deploy
):
    client.force_login(viewer)
    url = reverse("deployments:environment-detail", args=[production.pk])
    running = make_deploy(State.RUNNING, started=True)
    html = client.get(url, headers=HTMX).content.decode()
    assert 'every 3s" data-poll-visible data-busy="true"' in region(html, "environment-deploys")
    assert f'id="running-{running.pk}"' in html.split('id="environment-now"')[1]


def test_the_environment_pages_refresh_renders_and_reads_only_its_live_region(
    client, admin_user, production, make_deploy, django_assert_max_num_queries
):
    client.force_login(admin_user)  # an admin's page shows every part
    url = reverse("deployments:environment-detail", args=[production.pk])
    running = make_deploy(State.RUNNING, started=True)
    with django_assert_max_num_queries(20) as page:
        full = client.get(url).content.decode()
    with django_assert_max_num_queries(len(page.captured_queries) - 5):
        refresh = client.get(url, headers=HTMX).content.decode()
    assert refresh.lstrip().startswith('<section id="environment-deploys"')
    assert 'id="uptime"' in full and 'id="uptime"' not in refresh
    assert f'<tr id="deploy-{running.pk}">' in refresh
    assert f'id="running-{running.pk}"' in refresh.split('id="environment-now"')[1]


def test_overview_queries_do_not_grow_with_deploys(
    client, viewer, make_deploy, django_assert_max_num_queries
):
    client.force_login(viewer)
    for _ in range(5):
        make_deploy(State.QUEUED, started=False)
    with django_assert_max_num_queries(11):
        client.get(reverse("overview"))
