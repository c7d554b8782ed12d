"""The input gate: every text that enters HotDash passes here before anything acts on it.

* Text: a NUL character (PostgreSQL cannot store one) or a lone UTF-16 surrogate (no encoding
  can write one) is refused with :class:`InputRefused`, which names the field. A signed
  webhook delivery is GitHub's record of an event and must not be lost: its such characters are
  stored escaped (``\\u0000``) instead, and the paths escaped are reported.
* JSON: nesting deeper than :data:`MAX_JSON_DEPTH` is refused before the parser recurses, as are
  ``NaN``/``Infinity`` and integers outside 64 bits; then every string, keys included, is
  checked as text.
* Query strings and form bodies: every name and value is checked by
  :class:`InputGateMiddleware` before any view runs; numeric parameters are read with
  :func:`parse_id`, which answers None for anything that is not an id.
* Ids in URLs: the ``id`` path converter matches 1 to 19 digits up to 2**63 - 1; anything else
  is no match, so a 404.
* Dates: the form fields here only take days between :data:`DATE_MIN` and :data:`DATE_MAX`,
  so date arithmetic on them never overflows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from hotdash.errors import error_response

MAX_JSON_DEPTH = 64
MAX_ID = 2**63 - 1  # PostgreSQL bigint and SQLite INTEGER
DATE_MIN = date(1970, 1, 1)
DATE_MAX = date(9000, 12, 31)

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# Where a JSON text can carry a NUL or a lone surrogate: only as a \u escape (raw ones are not
# valid JSON or not valid UTF-8). Texts without any such escape skip the walk over every string.
_BAD_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# A JSON string (possessive, so an unterminated one cannot backtrack) or a bracket.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.DOTALL)
_ID = re.compile(r"[0-9]{1,19}")


class InputRefused(ValueError):
    """``field`` holds text HotDash does not accept; ``problem`` says what is wrong with it."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = escape_text(field)
        self.problem = problem
        super().__init__(f"{self.field} {problem}.")


class InvalidJson(ValueError):
    """The body is not a JSON document HotDash parses (the message says why)."""


def text_problem(value: str) -> str | None:
    """What makes ``value`` unacceptable as text, or None."""
    match = _BAD_TEXT.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character"
    return "contains a lone UTF-16 surrogate"


def check_text(field: str, value: str) -> str:
    """``value``, or InputRefused naming ``field``."""
    problem = text_problem(field) or text_problem(value)
    if problem:
        raise InputRefused(field, problem)
    return value


def escape_text(value: str) -> str:
    """``value`` with each NUL and lone surrogate written as its ``\\uXXXX`` escape."""
    return _BAD_TEXT.sub(lambda match: f"\\u{ord(match.group()):04x}", value)


def check_params(params: Any) -> None:
    """Every name and value of a QueryDict (query string or form body), or InputRefused."""
    for name, values in params.lists():
        for value in values:
            if isinstance(value, str):
                check_text(name, value)


# --- JSON ------------------------------------------------------------------------------------


def _check_depth(raw: bytes) -> None:
    depth = 0
    for token in _JSON_TOKEN.finditer(raw):
        char = token.group()[:1]
        if char in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise InvalidJson(f"it nests deeper than {MAX_JSON_DEPTH} levels")
        elif char in b"]}":
            depth -= 1


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _integer(text: str) -> int:
    value = int(text)
    if not -MAX_ID - 1 <= value <= MAX_ID:
        raise ValueError(f"the integer {text[:20]}… does not fit in 64 bits")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


def _walk(value: Any, path: str, on_bad: Callable[[str, str], str]) -> Any:
    """``value`` with every string (keys too) passed through ``on_bad(path, text)`` when it
    is not acceptable text. Recursion is safe: the depth was capped before parsing."""
    if isinstance(value, str):
        return on_bad(path, value) if text_problem(value) else value
    if isinstance(value, list):
        return [_walk(item, f"{path}[{index}]", on_bad) for index, item in enumerate(value)]
    if isinstance(value, dict):
        walked = {}
        for key, item in value.items():
            name = f"{path}.{key}" if path else key
            if text_problem(key):
                key = on_bad(f"{escape_text(name)} (a name)", key)
            walked[key] = _walk(item, escape_text(name), on_bad)
        return walked
    return value


def parse_json(raw: bytes, *, escape: bool = False) -> tuple[Any, list[str]]:
    """Parse a JSON body: (data, paths of the strings that were escaped).

    InvalidJson when it is not UTF-8 JSON or nests too deep; then a NUL or lone surrogate in
    any string raises InputRefused naming its path, or with ``escape`` is written as its
    ``\\uXXXX`` escape and its path returned.
    """
    _check_depth(raw)
    try:
        data = json.loads(raw, parse_constant=_constant, parse_int=_integer, parse_float=_finite)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidJson(str(exc)) from None
    if not _BAD_ESCAPE.search(raw):
        return data, []
    escaped: list[str] = []

    def on_bad(path: str, text: str) -> str:
        if not escape:
            raise InputRefused(path or "body", text_problem(text) or "")
        escaped.append(path)
        return escape_text(text)

    return _walk(data, "", on_bad), escaped


# --- numbers, ids and dates ------------------------------------------------------------------


def parse_id(value: Any) -> int | None:
    """``value`` as a database id (1 to 2**63 - 1), or None when it is not one."""
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not _ID.fullmatch(text):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


class IdConverter:
    """``<id:pk>`` in URL patterns: an id that fits the database, else no match (a 404)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


class IdField(forms.IntegerField):
    """An id (or cursor) in a form or query string: 64 bits at most."""

    def __init__(self, *, min_value: int = 1, **kwargs: Any) -> None:
        super().__init__(min_value=min_value, max_value=MAX_ID, **kwargs)


def _date_validators(low: Any, high: Any) -> list[Any]:
    return [MinValueValidator(low), MaxValueValidator(high)]


class DateField(forms.DateField):
    """A day between DATE_MIN and DATE_MAX."""

    default_validators = _date_validators(DATE_MIN, DATE_MAX)


class DateTimeField(forms.DateTimeField):
    """A moment between DATE_MIN and DATE_MAX (UTC)."""

    default_validators = _date_validators(
        datetime.combine(DATE_MIN, time.min, tzinfo=UTC),
        datetime.combine(DATE_MAX, time.max, tzinfo=UTC),
    )

    def to_python(self, value: Any) -> datetime | None:
        # Typed times are UTC, as the forms say, whichever zone the reader sees times in.
        with timezone.override(UTC):
            return super().to_python(value)


# --- the middleware --------------------------------------------------------------------------

FORM_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def refused_response(request: HttpRequest, refused: InputRefused) -> HttpResponse:
    """A 400 naming the field: the API's JSON error shape under /api/, plain text elsewhere."""
    if request.path.startswith("/api/"):
        return error_response(400, "invalid_text", str(refused), field=refused.field)
    return HttpResponse(f"{refused}\n", status=400, content_type="text/plain; charset=utf-8")


class InputGateMiddleware:
    """Query strings, form bodies and the URL's path parameters are checked as text before
    any view reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            for params in self._params(request):
                check_params(params)
        except InputRefused as refused:
            return refused_response(request, refused)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        try:
            for name, value in kwargs.items():
                if isinstance(value, str):
                    check_text(name, value)
        except InputRefused as refused:
            return refused_response(request, refused)
        return None

    @staticmethod
    def _params(request: HttpRequest) -> Iterable[Any]:
        yield request.GET
        if request.method == "POST" and request.content_type in FORM_CONTENT_TYPES:
            # The raw body first, so parsing the form does not use up the stream of a view
            # that reads the body itself (the API's JSON, a webhook's signed bytes).
            request.body  # noqa: B018 - read for its side effect
            yield request.POST
