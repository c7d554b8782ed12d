"""Browser fixtures: Debian's chromium driven by Playwright, and signing in as a demo user."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest
from django.db import connections

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "demo-password-for-tests"  # the demo fixture's DEMO_PASSWORD
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1400, "height": 900}}


@pytest.fixture
def browser(monkeypatch) -> Iterator[object]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not on PATH: apt-get install -y chromium (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
        # The test's ORM calls ran in Playwright's context, which has its own connection.
        connections.close_all()


@pytest.fixture
def signed_in(browser, live_server) -> Callable[..., object]:
    """``signed_in(username, **context_options)``: a page of a new browser context (PHONE or
    DESKTOP, say), signed in and on the overview."""

    def sign_in(username: str, **context_options):
        page = browser.new_context(**context_options).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    return sign_in
