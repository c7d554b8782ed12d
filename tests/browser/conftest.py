"""Browser fixtures: Debian's chromium driven by Playwright, and signing in as a demo user."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest
from django.db import connections

from scripts.screenshots import CHROMIUM_ARGS, DEVICES, sign_in

PASSWORD = "demo-password-for-tests"  # the demo fixture's DEMO_PASSWORD
PHONE, DESKTOP = DEVICES["phone"], DEVICES["desktop"]


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

    def sign_in_to_live_server(username: str, **context_options):
        return sign_in(browser, live_server.url, username, PASSWORD, **context_options)

    return sign_in_to_live_server
