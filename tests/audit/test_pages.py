"""The Audit page: filters, keyset pagination, target links, exports and who may see them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from approvals.audit import EXPORT_FIELDS, record
from approvals.models import AuditEvent
from approvals.selectors_audit import AuditFilters, audit_event_page

AUDIT = reverse("approvals:audit")


def shown_ids(response) -> list[int]:
    return [event.id for event in response.context["page"].events]


@pytest.fixture
def signed_in(client, viewer):
    client.force_login(viewer)  # records auth.login (event #6 after the fixture's five)
    return client


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, [6, 5, 4, 3, 2, 1]),
        ({"verb": "deploy.requested"}, [4, 1]),
        ({"verb": "deploy."}, [4, 2, 1]),  # a prefix, and "deployment.noise" is not in it
        ({"actor": "viewer"}, [6, 2]),
        ({"app": "shop"}, [3, 2, 1]),
        ({"app": "blog", "environment": "staging"}, [5, 4]),
        ({"environment": "production", "verb": "environment."}, [3]),
        ({"q": "checkout"}, [1]),  # case-insensitive, in the reason
        ({"q": "LOOKS"}, [2]),  # in the comment
        ({"q": "incident", "app": "blog"}, []),
        ({"target": "user"}, [6]),
    ],
)
def test_filters(events, signed_in, query, expected):
    response = signed_in.get(AUDIT, query)
    assert response.status_code == 200
    assert shown_ids(response) == expected


def test_the_date_range_includes_the_end_day(events, signed_in):
    day = events[0].created_at.date().isoformat()
    assert shown_ids(signed_in.get(AUDIT, {"since": day, "until": day})) == [6, 5, 4, 3, 2, 1]
    assert shown_ids(signed_in.get(AUDIT, {"since": "2001-01-01", "until": "2001-01-02"})) == []


@pytest.mark.parametrize(
    "query",
    [
        {"target": "not a target"},
        {"since": "2024-02-30"},
        {"since": "2024-03-02", "until": "2024-03-01"},
    ],
)
def test_bad_filters_are_explained(events, signed_in, query):
    response = signed_in.get(AUDIT, query)
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()


def test_cursor_pages_walk_the_whole_filter_newest_first(db):
    for n in range(7):
        record(actor="system", verb="deploy.queued" if n % 2 else "auth.login", data={"n": n})
    filters = AuditFilters(verb="deploy.")
    first = audit_event_page(filters=filters, size=2)
    assert [e.id for e in first.events] == [6, 4] and first.newer_cursor is None
    second = audit_event_page(filters=filters, before=first.older_cursor, size=2)
    assert [e.id for e in second.events] == [2] and second.older_cursor is None
    back = audit_event_page(filters=filters, after=second.events[0].id, size=2)
    assert [e.id for e in back.events] == [6, 4]


def test_a_deep_page_costs_the_same_queries_as_the_first(signed_in, django_assert_max_num_queries):
    for n in range(120):
        record(actor="worker", verb="deploy.step_done", app="shop", data={"n": n})
    with django_assert_max_num_queries(8):
        first = signed_in.get(AUDIT, {"verb": "deploy.", "app": "shop"})
    assert len(shown_ids(first)) == 50
    older = first.context["older_query"]
    with django_assert_max_num_queries(8):
        second = signed_in.get(f"{AUDIT}?{older}")
    with django_assert_max_num_queries(8):
        deep = signed_in.get(AUDIT, {"before": 3})
    assert shown_ids(second) == list(range(71, 21, -1))
    assert shown_ids(deep) == [2, 1]
    assert "verb=deploy." in older and "app=shop" in older


def test_htmx_requests_get_only_the_results(events, signed_in):
    response = signed_in.get(AUDIT, {"verb": "deploy."}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="audit-results">')
    assert "<h1>" not in html


def test_every_event_links_to_its_target(signed_in, demo):
    from deployments.models import Deploy

    deploy = Deploy.objects.first()
    record(actor="system", verb="deploy.queued", target=deploy)
    html = signed_in.get(AUDIT).content.decode()
    assert f'href="{reverse("deployments:deploy-detail", args=[deploy.pk])}"' in html
    login = AuditEvent.objects.filter(verb="auth.login").latest("id")
    assert f'href="{AUDIT}?target=user%3A{login.target_id}"' in html


def test_every_value_in_a_row_is_escaped(db, signed_in):
    from approvals.audit import Target

    event = record(
        actor="system",
        verb="environment.locked",
        target=Target(type="environment", id='1"><i>', repr="<b>prod</b>"),
        app="<shop>",
        environment="'prod'",
        data={"reason": "<script>alert(1)</script> & more"},
    )
    html = signed_in.get(AUDIT).content.decode()
    row = html[html.index(f'<tr id="audit-event-{event.pk}">') :].split("</tr>", 1)[0]
    assert "<script>" not in row and "<b>" not in row and "<i>" not in row
    assert "reason: &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in row
    assert "&lt;shop&gt;/&#x27;prod&#x27;" in row
    assert 'href="/audit/?target=environment%3A1%22%3E%3Ci%3E">&lt;b&gt;prod&lt;/b&gt;</a>' in row


def test_the_filter_inputs_keep_what_was_typed(events, signed_in):
    html = signed_in.get(AUDIT, {"actor": 'a"<b>', "since": "2024-02-30"}).content.decode()
    assert '<input type="text" name="actor" id="id_actor" value="a&quot;&lt;b&gt;"' in html
    assert 'name="since" id="id_since" value="2024-02-30" aria-invalid="true">' in html
    assert 'name="q" id="id_q" value="" maxlength="200">' in html


def test_the_page_shows_the_last_verification(events, signed_in):
    from approvals.audit import audit_chain_verify

    assert "not verified yet" in signed_in.get(AUDIT).content.decode()
    audit_chain_verify()
    assert "6 events verified" in signed_in.get(AUDIT).content.decode()
    assert "6 events verified" in signed_in.get(reverse("ops")).content.decode()


def export(client, fmt: str, query: dict) -> bytes:
    response = client.get(reverse(f"approvals:audit-export-{fmt}"), query)
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content)


def test_the_jsonl_export_is_exactly_the_filter_with_hashes(events, signed_in):
    query = {"verb": "deploy.", "app": "shop"}
    rows = [json.loads(line) for line in export(signed_in, "jsonl", query).splitlines()]
    assert [row["id"] for row in rows] == [1, 2]  # chain order
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert rows[1]["hash"] == events[1].hash and rows[1]["prev_hash"] == events[0].hash
    assert rows[1]["data"] == {"comment": "looks good"}
    exported = AuditEvent.objects.get(verb="audit.exported")
    assert exported.actor_name == "viewer" and exported.data["format"] == "jsonl"
    assert "verb=deploy." in exported.data["filter"]


def test_the_csv_export_is_exactly_the_filter_with_hashes(events, signed_in):
    body = export(signed_in, "csv", {"q": "incident"}).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [int(row["id"]) for row in rows] == [3]
    assert rows[0]["hash"] == events[2].hash
    assert json.loads(rows[0]["data"]) == {"reason": "incident 42"}


def test_the_csv_export_neutralises_spreadsheet_formulas(db, signed_in):
    record(actor="system", verb="environment.locked", target=None, app="=HYPERLINK(1)")
    body = export(signed_in, "csv", {"verb": "environment.locked"}).decode()
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert row["app_name"] == "'=HYPERLINK(1)"
    jsonl = export(signed_in, "jsonl", {"verb": "environment.locked"}).decode()
    assert json.loads(jsonl.splitlines()[0])["app_name"] == "=HYPERLINK(1)"


def test_an_export_with_a_bad_filter_is_refused(events, signed_in):
    response = signed_in.get(reverse("approvals:audit-export-csv"), {"until": "yesterday"})
    assert response.status_code == 400
    assert b"until" in response.content
    assert not AuditEvent.objects.filter(verb="audit.exported").exists()


@pytest.mark.parametrize("name", ["audit", "audit-export-csv", "audit-export-jsonl"])
def test_who_may_see_and_export(client, events, viewer, outsider, name):
    url = reverse(f"approvals:{name}")
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(outsider)
    assert client.get(url).status_code == 403
    client.force_login(viewer)
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 405
