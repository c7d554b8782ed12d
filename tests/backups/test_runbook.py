"""/ops/runbook/ is generated from the configuration: for the demo world it names the real
approvers, apps, environments, rollback targets and commands, and follows changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments.models import App, BackupRun, Environment
from deployments.services.environments import environment_lock

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(demo, client):
    def read(section: str = "") -> str:
        client.force_login(get_user_model().objects.get(username="dave"))  # a viewer
        response = client.get(reverse("ops-runbook"))
        assert response.status_code == 200
        html = response.content.decode()
        if not section:
            return html
        start = html.index(f'id="runbook-{section}"')
        return html[start : html.index("</article>", start)]

    return read


def test_the_demo_world_names_its_people_apps_environments_and_commands(page):
    production, staging = page("hot-dash-production"), page("hot-dash-staging")
    assert "1 approval from: admin, bob, carol, never the deploy's own requester" in production
    assert "none: deploys are queued at once" in staging
    assert (
        "python manage.py rollback hot-dash 1.1.1 --env production "
        "--reason &quot;...&quot; --as USERNAME" in production
    )
    assert "python manage.py rollback hot-dash 1.3.0-rc.1 --env staging" in staging
    assert '"app":"hot-dash","environment":"production"' in production
    assert "Allowed: an admin (admin) may queue a pending deploy" in production
    assert "Nothing to bypass" in staging
    for environment in Environment.objects.all():
        assert reverse("deployments:environment-detail", args=[environment.pk]) in page()
        assert reverse("deployments:rollback-form", args=[environment.pk]) in page()
        assert environment.fly_app_name in page(f"hot-dash-{environment.name}")


def test_the_runbook_follows_the_configuration(page, demo):
    production = demo.environments.get(name="production")
    production.approvals_required = 3
    production.allow_approval_bypass = False
    production.save()
    environment_lock(environment=production, actor="system", reason="incident 7")
    carol = get_user_model().objects.get(username="carol")
    carol.is_active = False
    carol.save()

    section = page("hot-dash-production")
    assert "3 approvals from: admin, bob, never" in section
    assert "Not enough eligible approvers (requester excluded)" in section
    assert "Not allowed on this environment" in section
    assert "Locked by system since" in section and "incident 7" in section

    production.allow_self_approval = True
    production.approvals_required = 2
    production.save()
    section = page("hot-dash-production")
    assert "(requesters may approve their own deploys)" in section
    assert "Not enough" not in section


def test_the_runbook_says_where_backups_go_and_when_a_drill_last_passed(page, settings):
    assert "never" in page()[page().index('id="runbook-last-verified"') :]
    started = timezone.now() - timedelta(days=2)
    verified = BackupRun.objects.create(
        started_at=started,
        finished_at=started + timedelta(seconds=4),
        path=str(settings.BACKUP_DIR / "hotdash-backup-20260101T030000Z"),
        size_bytes=10,
        result=BackupRun.Result.PASSED,
    )
    html = page()
    backups = html[html.index('id="runbook-backups"') :]
    assert str(settings.BACKUP_DIR) in backups and "0 3 * * sun" in backups
    assert f"python manage.py restore_drill {verified.path}" in backups
    assert started.strftime("%Y-%m-%d %H:%M") in backups


def test_the_runbook_needs_a_login_and_is_linked_from_the_nav(client, demo, outsider, viewer):
    response = client.get(reverse("ops-runbook"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(outsider)
    assert client.get(reverse("ops-runbook")).status_code == 403
    client.force_login(viewer)
    overview = client.get(reverse("overview")).content.decode()
    assert f'<a href="{reverse("ops-runbook")}"' in overview
    runbook = client.get(reverse("ops-runbook")).content.decode()
    assert f'<a href="{reverse("ops-runbook")}" aria-current="page">Runbook</a>' in runbook


def _fleet(count: int) -> None:
    for n in range(count):
        app = App.objects.create(
            name=f"fleet-{n:02d}", github_owner="acme", github_repo=f"fleet-{n:02d}", fly_org="acme"
        )
        Environment.objects.create(
            app=app, name="production", kind="production", fly_app_name=f"fleet-{n:02d}-prod"
        )


def test_a_fleet_runbook_is_paged_by_app_and_searchable(page, client):
    _fleet(11)  # with the demo's hot-dash: 12 apps, 10 a page

    first = page()
    assert "Page 1 of 2 · 12 in all" in first
    assert 'id="runbook-fleet-09"' in first and 'id="runbook-fleet-10"' not in first
    second = client.get(reverse("ops-runbook"), {"page": 2}).content.decode()
    assert 'id="runbook-fleet-10"' in second and 'id="runbook-hot-dash"' in second
    assert 'id="runbook-fleet-00"' not in second
    found = client.get(reverse("ops-runbook"), {"q": "HOT"}).content.decode()
    assert 'id="runbook-hot-dash"' in found and "fleet-" not in found
    assert 'value="HOT"' in found and "Pages of apps" not in found
    nothing = client.get(reverse("ops-runbook"), {"q": "<nope>"}).content.decode()
    assert "No app's name contains “&lt;nope&gt;”." in nothing
    # Every section that is not about apps is on every page.
    assert 'id="runbook-backups"' in second and 'id="runbook-backups"' in nothing


def test_the_runbook_takes_the_same_queries_for_one_app_or_a_full_page(page, client):
    page()  # signs in
    _fleet(10)

    def queries(search: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("ops-runbook"), {"q": search}).status_code == 200
        return len(captured)

    assert queries("fleet-00") == queries("fleet")
