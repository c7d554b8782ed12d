"""Where a link to GitHub or to a Fly app leads: the one rule for every such link on a page.

GitHub links go to ``GITHUB_WEB_URL`` (github.com; the sandbox in sandbox mode, which serves
read-only pages for pull requests, releases, compares and commits at the same paths). A Fly
app's ``https://<app>.fly.dev`` address goes to the sandbox's page of that app in sandbox mode,
where no fly.dev address exists. Everything else is left as it is."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

GITHUB = "github.com"
FLY_DEV = ".fly.dev"
SANDBOX_FLY_APP_PAGES = "/fly-apps/"  # hotdash.sandbox.pages.FLY_APP_PAGES


def github_url(full_name: str, path: str = "") -> str:
    """A page of the repository ``owner/name`` on GitHub: ``github_url(name, "/pull/7")``."""
    return outside_url(f"https://{GITHUB}/{full_name}{path}")


def outside_url(url: str) -> str:
    """``url`` as the reader should follow it (see the module)."""
    if not url:
        return url
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    if parts.netloc == GITHUB:
        return f"{settings.GITHUB_WEB_URL.rstrip('/')}{tail}"
    if settings.SANDBOX_MODE and parts.netloc.endswith(FLY_DEV):
        app = parts.netloc.removesuffix(FLY_DEV)
        return f"{settings.SANDBOX_URL}{SANDBOX_FLY_APP_PAGES}{app}"
    return url
