"""The overview at fleet scale: a page of apps at a time, found by name, in a fixed number of
queries whatever the number of apps, environments and deploys."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from deployments.models import App, Deploy, Environment, Release
from deployments.selectors.overview import APPS_PER_PAGE


def make_apps(count: int, *, prefix: str = "app", deploys_each: int = 1) -> None:
    start = App.objects.count()
    for n in range(start, start + count):
        app = App.objects.create(
            name=f"{prefix}-{n:03d}", github_owner="acme", github_repo=f"r{n}", fly_org="acme"
        )
        release = Release.objects.create(app=app, version="1.0.0", tag="v1.0.0")
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
    with django_assert_max_num_queries(10) as small:
        client.get(reverse("overview"))
    make_apps(APPS_PER_PAGE * 2, deploys_each=3)
    with django_assert_num_queries(len(small.captured_queries)):
        html = client.get(reverse("overview")).content.decode()
    assert len(shown_apps(html)) == APPS_PER_PAGE


@pytest.mark.django_db
def test_apps_come_a_page_at_a_time_by_name(client, viewer):
    client.force_login(viewer)
    make_apps(APPS_PER_PAGE + 3)
    first = client.get(reverse("overview")).content.decode()
    assert shown_apps(first) == [f"app-{n:03d}" for n in range(APPS_PER_PAGE)]
    assert f"Page 1 of 2 · {APPS_PER_PAGE + 3} in all" in first
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
