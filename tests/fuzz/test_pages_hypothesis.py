"""Every page and every HTML form, driven with hostile text, dates and integers: never a 5xx.

Each dashboard route is requested, as an admin (who sees every form), with ids drawn from
real and out-of-range numbers and a query string of hostile values; when the page answers,
one of its forms is submitted with each field either its own value or a hostile one. Values
travel as raw bytes, so lone surrogates arrive as the invalid UTF-8 a client can send.
``FUZZ_MAX_EXAMPLES`` sets the examples per route (default 25)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import FUZZ_SETTINGS

HOSTILE_TEXT = st.one_of(
    st.text(max_size=30),  # NUL and every other code point but surrogates
    st.sampled_from(
        ["\x00", "a\x00b", "\udc80", "x\ud800", " ", "", "<script>", "' OR 1=1 --", "../../x", "²"]
    ),
)
HOSTILE_NUMBER = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 10**23]),
).map(str)
HOSTILE_DATE = st.one_of(
    st.dates().map(str),
    st.datetimes().map(lambda moment: moment.strftime("%Y-%m-%d %H:%M")),
    st.sampled_from(["9999-12-31", "0001-01-01", "9999-12-31 23:59", "2026-02-30", "1e9"]),
)
HOSTILE = st.one_of(HOSTILE_TEXT, HOSTILE_NUMBER, HOSTILE_DATE)
# Query-string names the pages read, and a few they do not.
QUERY_NAMES = [
    "actor", "after", "app", "before", "deployable", "environment", "prereleases", "q",
    "release", "since", "target", "until", "verb", "page", "\x00",
]  # fmt: skip
PATH_ID = st.one_of(st.integers(1, 12), st.sampled_from([2**63, 10**23])).map(str)
SKIPPED_ACTIONS = ("/accounts/logout/",)  # signing out would end the run's session


def _page_routes() -> list[str]:
    """Path templates of every dashboard route (not Django's admin, the API or webhooks)."""

    def walk(patterns, prefix: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    return sorted(
        {
            route
            for route in walk(get_resolver().url_patterns, "/")
            if not route.startswith(("/api/", "/webhooks/", "/admin/", "/accounts/logout/"))
        }
    )


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, list[str]] = field(default_factory=dict)  # name -> its offered values


class FormParser(HTMLParser):
    """The forms of a page: action, method, and each named field with the values it offers."""

    def __init__(self, page_url: str) -> None:
        super().__init__()
        self.page_url = page_url
        self.forms: list[Form] = []
        self.current: Form | None = None
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "form":
            action = urljoin(self.page_url, attr.get("action") or self.page_url)
            self.current = Form(action=action, method=(attr.get("method") or "get").lower())
            self.forms.append(self.current)
        elif self.current is not None and tag in ("input", "textarea", "select"):
            name = attr.get("name")
            if name:
                self.current.fields.setdefault(name, [])
                if attr.get("value"):
                    self.current.fields[name].append(attr["value"])
                self.select = name if tag == "select" else None
        elif tag == "option" and self.current is not None and self.select:
            self.current.fields[self.select].append(attr.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None
        elif tag == "select":
            self.select = None


def _encoded(pairs: list[tuple[str, str]]) -> str:
    """URL-encoded as raw UTF-8 bytes, a lone surrogate included (invalid UTF-8 on the wire)."""
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass")


def _assert_no_server_error(response, what: str) -> None:
    assert response.status_code < 500, f"{what} answered {response.status_code}"


pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]


@pytest.mark.parametrize("route", _page_routes())
def test_pages_and_forms_never_answer_5xx(client, demo, sandbox, admin_user, route):
    client.force_login(admin_user)

    # Everything is drawn up front: the pages change as the run litters the database, and
    # Hypothesis replays a case only if its draws do not depend on the answers.
    @FUZZ_SETTINGS
    @given(
        ids=st.lists(PATH_ID, min_size=2, max_size=2),  # no route has more parameters
        query=st.lists(st.tuples(st.sampled_from(QUERY_NAMES), HOSTILE), max_size=2),
        form_pick=st.integers(0, 99),
        field_pick=st.integers(0, 99),
        value=HOSTILE,
    )
    def fuzz(ids, query, form_pick, field_pick, value):
        drawn = iter(ids)
        path = re.sub(r"<\w+:\w+>", lambda _: next(drawn), route)
        url = f"{path}?{_encoded(query)}" if query else path
        response = client.get(url)
        _assert_no_server_error(response, f"GET {url!r}")
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            return
        parser = FormParser(path)
        parser.feed(response.content.decode())
        forms = [form for form in parser.forms if not form.action.endswith(SKIPPED_ACTIONS)]
        if not forms:
            return
        form = forms[form_pick % len(forms)]
        # One field hostile, every other its own value (its first option): a refusal of the
        # others does not hide what the hostile one does.
        hostile = field_pick % max(len(form.fields), 1)
        pairs = [
            (name, value if index == hostile else (offered[:1] or [""])[0])
            for index, (name, offered) in enumerate(form.fields.items())
        ]
        body = _encoded(pairs)
        if form.method == "post":
            response = client.post(
                form.action, body, content_type="application/x-www-form-urlencoded"
            )
        else:
            response = client.get(f"{form.action}?{body}")
        _assert_no_server_error(response, f"{form.method.upper()} {form.action!r} {body!r}")

    fuzz()
