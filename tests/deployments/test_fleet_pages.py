"""Pages at fleet scale: each shows a bounded page (of apps, releases, previews) in a fixed
number of queries whatever the number of apps, environments, releases and deploys; the
overview finds apps by name."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from deployments.models import App, Deploy, Environment, Preview, Release
from deployments.selectors.overview import APPS_PER_PAGE
from deployments.selectors.previews import PREVIEWS_PER_PAGE
from deployments.selectors.releases import (
    NEWEST_RELEASES_SHOWN,
    RELEASE_APPS_PER_PAGE,
    ROLLBACK_APPS_PER_PAGE,
)


def make_apps(
    count: int,
    *,
    prefix: str = "app",
    deploys_each: int = 1,
    releases_each: int = 1,
    deploy_kind: str = Deploy.Kind.DEPLOY,
) -> None:
    start = App.objects.count()
    for n in range(start, start + count):
        app = App.objects.create(
            name=f"{prefix}-{n:03d}", github_owner="acme", github_repo=f"r{n}", fly_org="acme"
        )
        for minor in range(releases_each):
            release = Release.objects.create(app=app, version=f"1.{minor}.0", tag=f"v1.{minor}.0")
        for kind in (Environment.Kind.PRODUCTION, Environment.Kind.STAGING):
            environment = Environment.objects.create(
                app=app,
                name=kind,
                kind=kind,
                fly_app_name=f"{app.name}-{kind}",
                current_release=release,
            )
            for _ in range(deploys_each):
                Deploy.objects.create(
                    environment=environment,
                    release=release,
                    kind=deploy_kind,
                    reason="test",
                    state=Deploy.State.SUCCEEDED,
                    requested_by_system="release",
                )


def shown_apps(html: str) -> list[str]:
    return re.findall(r'<h2 id="app-([^"]+)">', html)


@pytest.mark.django_db
def test_queries_do_not_grow_with_apps_environments_or_deploys(
    client, viewer, django_assert_num_queries, django_assert_max_num_queries
):
    client.force_login(viewer)
    make_apps(3)
    with django_assert_max_num_queries(11) as small:
        client.get(reverse("overview"))
    make_apps(APPS_PER_PAGE * 2, deploys_each=3)
    with django_assert_num_queries(len(small.captured_queries)):
        html = client.get(reverse("overview")).content.decode()
    assert len(shown_apps(html)) == APPS_PER_PAGE


@pytest.mark.django_db
def test_the_overview_reads_a_page_in_nine_queries_with_locks_releases_and_previews(
    client, viewer, django_assert_max_num_queries
):
    """Session, user and roles, then the count, the page's apps with their active previews,
    their environments with the last deploy that ran, what runs and waits, the uptime figures
    and the emergency banner."""
    client.force_login(viewer)
    make_apps(APPS_PER_PAGE + 2, deploys_each=2)
    for app in App.objects.all():
        Preview.objects.create(app=app, pr_number=1, state=Preview.State.RUNNING)
    Environment.objects.update(locked_at=timezone.now(), locked_by=viewer, lock_reason="x")
    with django_assert_max_num_queries(9):
        html = client.get(reverse("overview")).content.decode()
    assert len(shown_apps(html)) == APPS_PER_PAGE
    assert html.count("Locked by viewer") == APPS_PER_PAGE * 2


@pytest.mark.django_db
def test_each_app_counts_its_own_previews_that_are_not_destroyed(client, viewer):
    client.force_login(viewer)
    make_apps(3)
    first, second, third = App.objects.order_by("name")
    for number, state in enumerate(Preview.State.values):
        Preview.objects.create(app=first, pr_number=number, state=state)
    Preview.objects.create(app=second, pr_number=1, state=Preview.State.DESTROYED)
    Preview.objects.create(app=third, pr_number=1, state=Preview.State.SLEEPING)
    html = client.get(reverse("overview")).content.decode()
    heading = r'<h2 id="app-{}">{}\s*<span class="muted">· acme/r\d+ · (\d+) active preview'
    counts = [
        re.search(heading.format(app.name, app.name), html)[1] for app in (first, second, third)
    ]
    assert counts == [str(len(Preview.State.values) - 1), "0", "1"]
    assert "· 1 active preview</span>" in html and "· 0 active previews</span>" in html


@pytest.mark.django_db
def test_an_environment_row_shows_its_release_lock_health_drift_and_uptime(client, viewer):
    client.force_login(viewer)
    make_apps(1)
    production = Environment.objects.get(kind=Environment.Kind.PRODUCTION)
    staging = Environment.objects.get(kind=Environment.Kind.STAGING)
    Release.objects.filter(pk=production.current_release_id).update(
        bad_marked_at=timezone.now(), bad_reason="breaks <login>"
    )
    since = timezone.now() - timedelta(hours=2)
    Environment.objects.filter(pk=production.pk).update(
        locked_at=since,
        locked_by=viewer,
        lock_reason="incident & more",
        health=Environment.Health.DEGRADED,
        drift={"m1": [], "m2": []},
        drift_checked_at=since,
        uptime=Environment.Uptime.DOWN,
        uptime_since=since,
    )
    Environment.objects.filter(pk=staging.pk).update(
        current_release=None, locked_at=since, locked_by=None, drift_checked_at=since
    )
    html = client.get(reverse("overview")).content.decode()
    row = html.split(f'<tr id="environment-{production.pk}">')[1].split("</tr>")[0]
    assert f'<a href="/environments/{production.pk}/">production</a>' in row
    assert "app-000-production · ord · 1×</div>" in row
    assert f'<a href="/releases/{production.current_release_id}/">v1.0.0</a>' in row
    assert 'title="breaks &lt;login&gt;">marked bad</span>' in row
    assert "Locked by viewer</span>" in row and "incident &amp; more · since <time" in row
    assert '<span class="state state-degraded">Degraded</span>' in row
    assert 'title="2 machine(s) differ from the declared config">drifted</span>' in row
    assert '<span class="state state-failing">down</span> since <time' in row
    other = html.split(f'<tr id="environment-{staging.pk}">')[1].split("</tr>")[0]
    assert '<span class="muted">nothing deployed</span>' in other
    assert "Locked by system</span>" in other
    assert "config as declared" in other and "not probed yet" in other


@pytest.mark.django_db
def test_apps_come_a_page_at_a_time_by_name(client, viewer):
    client.force_login(viewer)
    make_apps(APPS_PER_PAGE + 3)
    first = client.get(reverse("overview")).content.decode()
    assert shown_apps(first) == [f"app-{n:03d}" for n in range(APPS_PER_PAGE)]
    assert f"Page 1 of 2 · {APPS_PER_PAGE + 3} in all" in first
    # Which apps of how many, above them as well as in the pager below.
    assert f"Apps 1–{APPS_PER_PAGE} of {APPS_PER_PAGE + 3} · page 1 of 2" in first
    assert 'rel="next" href="?page=2"' in first
    second = client.get(reverse("overview"), {"page": 2}).content.decode()
    assert shown_apps(second) == [f"app-{n:03d}" for n in range(APPS_PER_PAGE, APPS_PER_PAGE + 3)]
    # Past the end: the last page, not an error.
    assert shown_apps(client.get(reverse("overview"), {"page": 99}).content.decode()) == (
        shown_apps(second)
    )


@pytest.mark.django_db
def test_the_search_box_finds_apps_by_part_of_their_name_and_pages_keep_it(client, viewer):
    client.force_login(viewer)
    make_apps(APPS_PER_PAGE + 1)
    make_apps(2, prefix="billing")
    html = client.get(reverse("overview"), {"q": " BILL "}).content.decode()
    assert shown_apps(html) == [
        f"billing-{APPS_PER_PAGE + 1:03d}",
        f"billing-{APPS_PER_PAGE + 2:03d}",
    ]
    assert 'role="search"' in html and 'value="BILL"' in html
    assert 'hx-get="/?q=+BILL+"' in html  # the region refreshes what is shown
    assert "Apps 1–2 of 2 whose name contains “BILL” · page 1 of 1" in html
    many = client.get(reverse("overview"), {"q": "app"}).content.decode()
    assert 'href="?q=app&amp;page=2"' in many
    none = client.get(reverse("overview"), {"q": "nothing-like-it"}).content.decode()
    assert shown_apps(none) == [] and "No app’s name contains “nothing-like-it”." in none


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"page": "two"}, "The page number must be a whole number from 1."),
        ({"page": "0"}, "The page number must be a whole number from 1."),
        ({"q": "x" * 61}, "Ensure this value has at most 60 characters (it has 61)."),
        ({"q": "a\x00b"}, "q contains a NUL character."),  # the input gate, first
    ],
)
def test_a_bad_search_or_page_is_refused_with_a_sentence(client, viewer, query, message):
    client.force_login(viewer)
    make_apps(1)
    response = client.get(reverse("overview"), query)
    assert response.status_code == 400
    assert message in response.content.decode()


def release_tags(html: str) -> list[str]:
    return re.findall(r'id="release-\d+">\s*<td><a href="[^"]+">(v[^<]+)</a>', html)


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{}, {"environment": "staging"}])
def test_releases_page_queries_do_not_grow_with_apps_or_releases(
    client, viewer, query, django_assert_num_queries, django_assert_max_num_queries
):
    client.force_login(viewer)
    make_apps(2, releases_each=2)
    with django_assert_max_num_queries(11) as small:
        client.get(reverse("deployments:release-list"), query)
    make_apps(RELEASE_APPS_PER_PAGE * 2, releases_each=NEWEST_RELEASES_SHOWN + 3, deploys_each=2)
    with django_assert_num_queries(len(small.captured_queries)):
        html = client.get(reverse("deployments:release-list"), query).content.decode()
    assert html.count('<section class="card" id="app-') == RELEASE_APPS_PER_PAGE


@pytest.mark.django_db
def test_releases_page_shows_each_apps_newest_and_links_to_all_of_them(client, viewer):
    client.force_login(viewer)
    make_apps(RELEASE_APPS_PER_PAGE + 1, releases_each=NEWEST_RELEASES_SHOWN + 2)
    html = client.get(reverse("deployments:release-list")).content.decode()
    newest = [f"v1.{minor}.0" for minor in range(NEWEST_RELEASES_SHOWN + 1, 1, -1)]
    assert release_tags(html) == newest * RELEASE_APPS_PER_PAGE
    assert '<a href="?app=app-000">All releases of app-000</a>' in html
    assert "(2 older not shown here)" in html
    assert 'rel="next" href="?page=2"' in html
    last = client.get(reverse("deployments:release-list"), {"page": 2}).content.decode()
    assert f'id="app-app-{RELEASE_APPS_PER_PAGE:03d}"' in last
    one = client.get(reverse("deployments:release-list"), {"app": "app-000"}).content.decode()
    assert len(release_tags(one)) == NEWEST_RELEASES_SHOWN + 2 and "older not shown" not in one
    assert '<input type="hidden" name="app" value="app-000">' in one  # filters keep the app


def rollbacks_page_apps(html: str) -> tuple[list[str], list[str]]:
    """The apps of the Rollbacks page's environments table and of its history, in order."""
    environments = re.findall(r'<tr id="environment-\d+"><td><a [^>]+>([^<]+) / ', html)
    history = re.findall(r'<tr id="rollback-\d+"><td>.*?</td><td>([^<]+) / ', html)
    return environments, history


def each_of(apps: range, times: int) -> list[str]:
    return [f"app-{n:03d}" for n in apps for _ in range(times)]


@pytest.mark.django_db
def test_rollbacks_page_queries_do_not_grow_with_apps_or_rollbacks(
    client, viewer, django_assert_num_queries, django_assert_max_num_queries
):
    client.force_login(viewer)
    make_apps(2, deploy_kind=Deploy.Kind.ROLLBACK)
    with django_assert_max_num_queries(10) as small:
        client.get(reverse("deployments:rollback-list"))
    make_apps(ROLLBACK_APPS_PER_PAGE * 2, deploys_each=3, deploy_kind=Deploy.Kind.ROLLBACK)
    with django_assert_num_queries(len(small.captured_queries)):
        html = client.get(reverse("deployments:rollback-list")).content.decode()
    environments, history = rollbacks_page_apps(html)
    # Two environments an app; the first two apps have one rollback on each, the rest three.
    assert environments == each_of(range(ROLLBACK_APPS_PER_PAGE), 2)
    assert history == each_of(range(2), 2) + each_of(range(2, ROLLBACK_APPS_PER_PAGE), 6)


@pytest.mark.django_db
def test_rollbacks_come_a_page_of_apps_at_a_time_by_name(client, viewer):
    client.force_login(viewer)
    make_apps(ROLLBACK_APPS_PER_PAGE + 3, deploy_kind=Deploy.Kind.ROLLBACK)
    url = reverse("deployments:rollback-list")
    first = client.get(url).content.decode()
    assert rollbacks_page_apps(first) == (each_of(range(ROLLBACK_APPS_PER_PAGE), 2),) * 2
    assert f"Page 1 of 2 · {ROLLBACK_APPS_PER_PAGE + 3} in all" in first
    assert 'rel="next" href="?page=2"' in first
    second = client.get(url, {"page": 2}).content.decode()
    rest = each_of(range(ROLLBACK_APPS_PER_PAGE, ROLLBACK_APPS_PER_PAGE + 3), 2)
    assert rollbacks_page_apps(second) == (rest, rest)
    assert 'rel="prev" href="?page=1"' in second
    # Refreshed after an approval, the history stays on its page.
    assert 'hx-get="/rollbacks/?page=2"' in second
    # Past the end: the last page, not an error.
    assert rollbacks_page_apps(client.get(url, {"page": 99}).content.decode()) == (rest, rest)


@pytest.mark.django_db
def test_the_environment_filter_shows_its_app_and_only_its_rollbacks(client, viewer):
    client.force_login(viewer)
    make_apps(ROLLBACK_APPS_PER_PAGE + 3, deploys_each=2, deploy_kind=Deploy.Kind.ROLLBACK)
    last = Environment.objects.get(
        app__name=f"app-{ROLLBACK_APPS_PER_PAGE + 2:03d}", name="staging"
    )
    html = client.get(reverse("deployments:rollback-list"), {"environment": last.pk})
    html = html.content.decode()
    environments, history = rollbacks_page_apps(html)
    assert environments == [last.app.name] * 2 and history == [last.app.name] * 2
    shown = {int(pk) for pk in re.findall(r'<tr id="rollback-(\d+)">', html)}
    assert shown == set(last.deploys.values_list("pk", flat=True))
    assert 'class="pager"' not in html  # one app: one page
    assert "Show every environment's history</a>" in html


def make_previews(count: int) -> None:
    app = App.objects.get_or_create(
        name="previewed", defaults={"github_owner": "acme", "github_repo": "p", "fly_org": "acme"}
    )[0]
    start = Preview.objects.count()
    for number in range(start + 1, start + count + 1):
        environment = Environment.objects.create(
            app=app,
            name=f"pr-{number}",
            kind=Environment.Kind.PREVIEW,
            fly_app_name=f"previewed-pr-{number}",
        )
        Preview.objects.create(
            app=app,
            environment=environment,
            pr_number=number,
            state=Preview.State.RUNNING,
            updated_at=timezone.now() + timedelta(minutes=number),
        )


@pytest.mark.django_db
def test_previews_page_queries_do_not_grow_with_previews(
    client, viewer, django_assert_num_queries, django_assert_max_num_queries
):
    client.force_login(viewer)
    make_previews(2)
    with django_assert_max_num_queries(8) as small:
        client.get(reverse("deployments:preview-list"))
    make_previews(PREVIEWS_PER_PAGE + 5)
    with django_assert_num_queries(len(small.captured_queries)):
        html = client.get(reverse("deployments:preview-list")).content.decode()
    assert len(re.findall(r'<tr id="preview-\d+"', html)) == PREVIEWS_PER_PAGE


def hold_with_a_deploy(previews, approver) -> None:
    """Each of ``previews`` deployed once, then held at a new fork commit after ``approver``
    approved an earlier one: every column and relation its row and held note show."""
    for preview in previews:
        Deploy.objects.create(
            environment=preview.environment,
            kind=Deploy.Kind.PREVIEW,
            commit_sha="a" * 40,
            reason="test",
            state=Deploy.State.SUCCEEDED,
            requested_by_system="preview",
        )
        preview.state, preview.is_fork = Preview.State.AWAITING_APPROVAL, True
        preview.approved_sha, preview.head_sha, preview.approved_by = "a" * 40, "b" * 40, approver
        preview.save()


@pytest.mark.django_db
def test_previews_page_reads_what_its_rows_show_in_its_own_queries(
    client, viewer, django_assert_num_queries, django_assert_max_num_queries
):
    client.force_login(viewer)
    make_previews(1)
    hold_with_a_deploy(Preview.objects.all(), viewer)
    with django_assert_max_num_queries(8) as small:
        client.get(reverse("deployments:preview-list"))
    make_previews(PREVIEWS_PER_PAGE)
    hold_with_a_deploy(Preview.objects.filter(approved_by=None), viewer)
    with django_assert_num_queries(len(small.captured_queries)):
        html = client.get(reverse("deployments:preview-list")).content.decode()
    assert html.count("aaaaaaa</span> was approved by viewer;") == PREVIEWS_PER_PAGE
    assert html.count('<span class="mono">aaaaaaa</span> succeeded, ') == PREVIEWS_PER_PAGE


@pytest.mark.django_db
def test_previews_come_a_page_at_a_time_most_recently_updated_first(client, viewer):
    client.force_login(viewer)
    make_previews(PREVIEWS_PER_PAGE + 2)
    first = client.get(reverse("deployments:preview-list")).content.decode()
    assert f"Page 1 of 2 · {PREVIEWS_PER_PAGE + 2} in all" in first
    newest = Preview.objects.get(pr_number=PREVIEWS_PER_PAGE + 2)
    assert first.index(f'id="preview-{newest.pk}"') < first.index("</tbody>")
    second = client.get(reverse("deployments:preview-list"), {"page": 2}).content.decode()
    shown = re.findall(r'<tr id="preview-(\d+)"', second)
    oldest = Preview.objects.order_by("updated_at")[:2]
    assert sorted(map(int, shown)) == sorted(preview.pk for preview in oldest)
    assert 'rel="prev" href="?page=1"' in second
