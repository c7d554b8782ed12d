"""Uptime on the overview and the environment page: state and since when, 24 h and 7 d, an
inline SVG latency sparkline, and the environment's last failures with their errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import App, Environment, Probe
from hotdash.templatetags.sparkline import sparkline_points


def probe_history(environment: Environment, *, failing_last: int = 0) -> None:
    """Two hours of one probe a minute (latency 100 ms, then 300 ms), the last ``failing_last``
    failed with a 503; the environment is judged down or up accordingly."""
    now = timezone.now()
    Probe.objects.bulk_create(
        Probe(
            environment=environment,
            checked_at=now - timedelta(minutes=120 - minute),
            ok=minute < 120 - failing_last,
            status_code=200 if minute < 120 - failing_last else 503,
            latency_ms=100 if minute < 60 else 300,
            error="" if minute < 120 - failing_last else "HTTP 503 Service Unavailable",
        )
        for minute in range(120)
    )
    environment.uptime = Environment.Uptime.DOWN if failing_last >= 3 else Environment.Uptime.UP
    environment.uptime_since = now - timedelta(minutes=max(failing_last, 100))
    environment.save()


@pytest.fixture
def production(demo) -> Environment:
    return demo.environments.get(kind=Environment.Kind.PRODUCTION)


def row(html: str, environment: Environment) -> str:
    start = html.index(f'id="environment-{environment.pk}"')
    return html[start : html.index("</tr>", start)]


def test_the_overview_shows_uptime_and_a_latency_sparkline(client, viewer, production):
    probe_history(production, failing_last=6)
    client.force_login(viewer)
    html = row(client.get("/").content.decode(), production)
    assert "state-failing" in html and ">down<" in html and "since <time" in html
    assert '<span class="uptime-24h">95.0 %</span> over 24 h' in html  # 114 of 120
    assert '<span class="uptime-7d">95.0 %</span> over 7 d' in html
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert 'role="img"' in svg and 'aria-label="Hourly mean probe latency over 24 h: ' in svg
    assert "<polyline points=" in svg and "<script" not in html
    staging = row(client.get("/").content.decode(), production.app.environments.get(name="staging"))
    assert "not probed yet" in staging and 'uptime-24h">—</span> over 24 h' in staging
    assert "not enough probes for a trend" in staging


def test_the_environment_page_lists_the_last_failures(client, viewer, production):
    probe_history(production, failing_last=4)
    client.force_login(viewer)
    html = client.get(f"/environments/{production.pk}/").content.decode()
    section = html[html.index('id="uptime"') : html.index('id="declared-config"')]
    assert '<span class="uptime-24h">96.67 %</span>' in section  # 116 of 120
    assert "<svg" in section
    failures = section[section.index("Last failures") :]
    assert failures.count("HTTP 503 Service Unavailable") == 4
    assert failures.count('<td data-label="Status">503</td>') == 4


def test_an_environment_never_failed_says_so(client, viewer, production):
    probe_history(production)
    client.force_login(viewer)
    html = client.get(f"/environments/{production.pk}/").content.decode()
    assert "No failed probe is stored." in html
    assert '<span class="uptime-24h">100.0 %</span>' in html


def test_overview_queries_do_not_grow_with_environments(client, viewer, demo, production):
    probe_history(production, failing_last=3)
    client.force_login(viewer)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/").status_code == 200
        return len(queries)

    before = count()
    for n in range(3):
        app = App.objects.create(
            name=f"more-{n}", github_owner="o", github_repo=f"r{n}", fly_org="personal"
        )
        for kind in (Environment.Kind.STAGING, Environment.Kind.PRODUCTION):
            environment = Environment.objects.create(
                app=app, name=kind, kind=kind, fly_app_name=f"more-{n}-{kind}"
            )
            probe_history(environment, failing_last=n)
    assert count() == before


def test_sparkline_points_span_the_box_with_the_largest_value_on_top():
    assert sparkline_points([0, 50, 100]) == "2.0,22.0 48.0,12.0 94.0,2.0"
    assert sparkline_points([7, 7]) == "2.0,2.0 94.0,2.0"


def test_the_ops_page_lists_judged_environments_down_first_in_constant_queries(
    client, viewer, demo, production
):
    staging = demo.environments.get(kind=Environment.Kind.STAGING)
    probe_history(staging)
    client.force_login(viewer)

    def uptime_section() -> tuple[str, int]:
        with CaptureQueriesContext(connection) as queries:
            html = client.get("/ops/").content.decode()
        return html[html.index('id="uptime"') : html.index('id="backups"')], len(queries)

    one, queries = uptime_section()
    assert f'<a href="/environments/{staging.pk}/">{demo.name} staging</a>' in one
    assert '<span class="state state-healthy">up</span>' in one
    assert "1\xa0hour, 40\xa0minutes ago" in one
    probe_history(production, failing_last=3)
    both, more_queries = uptime_section()
    assert more_queries == queries
    down = both.index(f'<a href="/environments/{production.pk}/">{demo.name} production</a>')
    assert '<span class="state state-failing">down</span>' in both[down:]
    assert down < both.index(f"/environments/{staging.pk}/")
