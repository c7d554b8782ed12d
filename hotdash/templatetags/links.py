"""``{{ url|outside }}`` and ``{% github_page app kind ref %}``: every link to GitHub or a Fly
app goes through hotdash.links."""

from __future__ import annotations

from django import template

from hotdash.links import github_url, outside_url

register = template.Library()
register.filter("outside", outside_url)


@register.simple_tag
def github_page(app, kind: str, ref: str) -> str:
    """``{% github_page app "commit" sha %}``: that page of the app's repository on GitHub."""
    return github_url(app.github_full_name, f"/{kind}/{ref}")
