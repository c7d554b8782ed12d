"""``{% page_url "name" %}``: ``{% url "name" %}`` reversed once per process (hotdash.paths),
for the links the layout draws on every page."""

from __future__ import annotations

from django import template

from hotdash.paths import page_url

register = template.Library()
register.simple_tag(page_url, name="page_url")
