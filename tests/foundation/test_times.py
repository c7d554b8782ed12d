"""One rule for timestamps on pages: the active zone (UTC by default) shown, in <time> with the
exact time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import time_machine
from django.template import Context, Template, TemplateSyntaxError
from django.utils import timezone as django_timezone

from hotdash import input_gate

NOW = datetime(2026, 5, 4, 9, 12, 30, tzinfo=UTC)


def render(source: str, **context) -> str:
    return Template("{% load times %}" + source).render(Context(context))


def test_when_shows_utc_with_the_zone_whatever_the_zone_of_the_value():
    berlin = NOW.astimezone(timezone(timedelta(hours=2)))
    html = render("{{ t|when }}", t=berlin)
    assert html == (
        '<time datetime="2026-05-04T09:12:30Z" title="2026-05-04 09:12:30 UTC">'
        "2026-05-04 09:12 UTC</time>"
    )


@pytest.mark.parametrize(
    "precision, text",
    [
        ("seconds", "2026-05-04 09:12:30 UTC"),
        ("time", "09:12 UTC"),
        ("time-seconds", "09:12:30 UTC"),
        ("date", "2026-05-04"),
    ],
)
def test_every_precision_keeps_the_exact_time_in_the_title(precision, text):
    html = render("{{ t|when:p }}", t=NOW, p=precision)
    assert f">{text}</time>" in html
    assert 'title="2026-05-04 09:12:30 UTC"' in html


def test_an_unknown_precision_is_an_error():
    with pytest.raises(TemplateSyntaxError, match="unknown time precision"):
        render('{{ t|when:"fortnight" }}', t=NOW)


@time_machine.travel(NOW, tick=False)
def test_ago_is_relative_both_ways_with_the_exact_time_in_the_title():
    past = render("{{ t|ago }}", t=NOW - timedelta(hours=3, minutes=5))
    assert past == (
        '<time datetime="2026-05-04T06:07:30Z" title="2026-05-04 06:07:30 UTC">'
        "3\xa0hours, 5\xa0minutes ago</time>"
    )
    future = render("{{ t|ago }}", t=NOW + timedelta(minutes=20))
    assert ">in 20\xa0minutes</time>" in future
    assert 'title="2026-05-04 09:32:30 UTC"' in future


def test_nothing_renders_as_nothing_so_a_default_applies():
    assert render('{{ t|when|default:"never" }} {{ t|ago }}', t=None) == "never "


def test_the_active_zone_shifts_the_text_and_title_but_not_the_datetime():
    with django_timezone.override("Europe/Paris"):
        html = render("{{ t|when }} {{ t|when:'time' }}", t=NOW)
    assert html == (
        '<time datetime="2026-05-04T09:12:30Z" title="2026-05-04 11:12:30 CEST">'
        "2026-05-04 11:12 CEST</time> "
        '<time datetime="2026-05-04T09:12:30Z" title="2026-05-04 11:12:30 CEST">'
        "11:12 CEST</time>"
    )


def test_a_typed_time_is_utc_whatever_zone_the_reader_sees():
    with django_timezone.override("Europe/Paris"):
        moment = input_gate.DateTimeField().clean("2026-12-24 00:00")
    assert moment == datetime(2026, 12, 24, tzinfo=UTC)
