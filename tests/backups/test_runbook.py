"""/ops/runbook/ is generated from the configuration: for the demo world it names the real
approvers, apps, environments, rollback targets and commands, and follows changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals import policy
from approvals.selectors import users_holding
from deployments.models import App, BackupRun, Deploy, Environment
from deployments.selectors.releases import rollback_choices
from deployments.selectors.runbook import runbook_of
from deployments.services.environments import environment_lock
from deployments.services.releases import release_mark_bad

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(demo, client):
    """``page(section)``: the hot-dash runbook's article of that id (all of it for ""); the
    front page's for ``page(section, front=True)``."""

    def read(section: str = "", *, front: bool = False) -> str:
        client.force_login(get_user_model().objects.get(username="dave"))  # a viewer
        url = reverse("ops-runbook") if front else reverse("ops-runbook-app", args=["hot-dash"])
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        if not section:
            return html
        start = html.index(f'id="runbook-{section}"')
        return html[start : html.index("</section>" if front else "</article>", start)]

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
    assert 'production <span class="lock">locked</span> · staging' in page(
        "app-hot-dash", front=True
    )

    production.allow_self_approval = True
    production.approvals_required = 2
    production.save()
    section = page("hot-dash-production")
    assert "(requesters may approve their own deploys)" in section
    assert "Not enough" not in section


def test_the_runbook_says_where_backups_go_and_when_a_drill_last_passed(page, settings):
    front = page(front=True)
    assert "never" in front[front.index('id="runbook-last-verified"') :]
    started = timezone.now() - timedelta(days=2)
    verified = BackupRun.objects.create(
        started_at=started,
        finished_at=started + timedelta(seconds=4),
        path=str(settings.BACKUP_DIR / "hotdash-backup-20260101T030000Z"),
        size_bytes=10,
        result=BackupRun.Result.PASSED,
    )
    html = page(front=True)
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
    current = f'<a href="{reverse("ops-runbook")}" aria-current="page">Runbook</a>'
    runbook = client.get(reverse("ops-runbook")).content.decode()
    assert current in runbook
    app_url = reverse("ops-runbook-app", args=["hot-dash"])
    assert f'<a href="{app_url}"><strong>hot-dash</strong></a>' in runbook
    one_app = client.get(app_url).content.decode()
    assert current in one_app and f'<a href="{reverse("ops")}" aria-current' not in one_app
    assert client.get(reverse("ops-runbook-app", args=["no-such-app"])).status_code == 404


def _fleet(count: int) -> None:
    for n in range(count):
        app = App.objects.create(
            name=f"fleet-{n:02d}", github_owner="acme", github_repo=f"fleet-{n:02d}", fly_org="acme"
        )
        Environment.objects.create(
            app=app, name="production", kind="production", fly_app_name=f"fleet-{n:02d}-prod"
        )


def test_a_fleet_runbook_is_paged_by_app_and_searchable(page, client):
    _fleet(20)  # with the demo's hot-dash: 21 apps, 20 a page

    first = page(front=True)
    assert "Page 1 of 2 · 21 in all" in first
    assert 'id="runbook-app-fleet-19"' in first and 'id="runbook-app-hot-dash"' not in first
    assert (
        'fleet-19</strong></a> <span class="muted">acme/fleet-19</span>\n      <br>production'
        in (first)
    )
    second = client.get(reverse("ops-runbook"), {"page": 2}).content.decode()
    assert 'id="runbook-app-hot-dash"' in second and 'id="runbook-app-fleet-00"' not in second
    assert "production · staging" in second
    found = client.get(reverse("ops-runbook"), {"q": "HOT"}).content.decode()
    assert 'id="runbook-app-hot-dash"' in found and "fleet-" not in found
    assert 'value="HOT"' in found and "Pages of apps" not in found
    nothing = client.get(reverse("ops-runbook"), {"q": "<nope>"}).content.decode()
    assert "No app's name contains “&lt;nope&gt;”." in nothing
    # What holds for every app is on every page.
    assert 'id="runbook-backups"' in second and 'id="runbook-backups"' in nothing


def _queries(client, url: str, **query: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, query).status_code == 200
    return len(captured)


def test_the_runbooks_queries_do_not_grow_with_apps_or_history(page, client, demo):
    page()  # signs in
    _fleet(5)
    front = reverse("ops-runbook")
    assert _queries(client, front, q="fleet-00") == _queries(client, front, q="fleet")
    app = reverse("ops-runbook-app", args=["hot-dash"])
    before = _queries(client, app)
    production = demo.environments.get(name="production")
    for release in demo.releases.all():
        Deploy.objects.create(
            environment=production,
            release=release,
            state=Deploy.State.SUCCEEDED,
            health_verified=True,
            finished_at=timezone.now(),
            image_ref=release.image_ref,
            reason="history",
            requested_by_system="github",
        )
    assert _queries(client, app) == before


def test_an_apps_rollback_targets_are_read_with_their_releases_in_two_queries(
    demo, admin_user, django_assert_num_queries
):
    production = demo.environments.get(name="production")
    target = runbook_of(app_name="hot-dash").environments[0]
    assert target.environment == production and target.rollback_version
    # The app, approvers and their groups (the admins among them), environments, recent
    # deploys, their releases, freeze windows, GitHub team roles.
    with django_assert_num_queries(8):
        runbook_of(app_name="hot-dash")
    release_mark_bad(
        release=demo.releases.get(version=target.rollback_version), actor=admin_user, reason="5xx"
    )
    # Who marked it bad is not read: only that it is blocked. The next release back is the
    # target now.
    with django_assert_num_queries(8):
        after = runbook_of(app_name="hot-dash").environments[0]
    assert after.rollback_version and after.rollback_version != target.rollback_version


def test_an_apps_runbook_names_as_rollback_target_what_the_rollback_form_offers(demo):
    """The runbook's target, read from plain values, is the rollback form's last healthy
    release, environment by environment."""
    for runbook in runbook_of(app_name="hot-dash").environments:
        last_healthy = rollback_choices(environment=runbook.environment).last_healthy
        assert runbook.rollback_version == (last_healthy.version if last_healthy else "")


def test_an_apps_runbook_names_as_admins_the_holders_of_the_admin_role(demo, admin_user):
    """Read among the approvers: group admins and superusers, not mere approvers."""
    users = get_user_model().objects
    for name, group in (("rb-ann", "admin"), ("rb-bob", "approver"), ("rb-cid", "deployer")):
        users.create_user(name).groups.add(Group.objects.get_or_create(name=group)[0])
    admins = runbook_of(app_name="hot-dash").admins
    assert admins == [user.get_username() for user in users_holding(policy.ADMIN)]
    assert "rb-ann" in admins and admin_user.username in admins
    assert "rb-bob" not in admins and "rb-cid" not in admins
