"""Page URLs for code that builds many rows of HTML, and for the nav every page draws:
``reverse`` once per URL name (and script prefix), then only an object's id put in."""

from __future__ import annotations

from functools import lru_cache

from django.urls import get_script_prefix, reverse

# Only marks where the id goes in the reversed URL; no other digits of a URL pattern are this.
_MARK = 9_876_543_210_987


@lru_cache(maxsize=128)
def _around_id(name: str, script_prefix: str) -> tuple[str, str]:
    before, _, after = reverse(name, args=[_MARK]).partition(str(_MARK))
    return before, after


@lru_cache(maxsize=128)
def _page_url(name: str, script_prefix: str) -> str:
    return reverse(name)


def page_url(name: str) -> str:
    """``reverse(name)`` for a URL pattern without arguments."""
    return _page_url(name, get_script_prefix())


def object_url(name: str, pk: int) -> str:
    """``reverse(name, args=[pk])`` for a URL pattern whose only argument is an ``<id:pk>``."""
    before, after = _around_id(name, get_script_prefix())
    return f"{before}{pk}{after}"
