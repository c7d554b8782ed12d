"""The request form in a real browser: choosing another release refreshes what the form says
about it (promotion rule, outlook) and keeps what the person already typed."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_choosing_another_release_refreshes_the_notes_and_keeps_the_reason(
    signed_in, live_server, demo
):
    production = demo.environments.get(name="production")
    v130, v131 = (demo.releases.get(version=version) for version in ("1.3.0", "1.3.1"))
    alice = signed_in("alice", **PHONE)
    alice.goto(f"{live_server.url}/deploys/new/?environment={production.pk}&release={v131.pk}")
    assert alice.locator("#promotion").get_attribute("data-met") == "false"
    alice.locator("textarea[name=reason]").fill("ship the audit export")

    alice.locator("select[name=release]").select_option(str(v130.pk))

    alice.locator("#promotion[data-met=true]").wait_for()
    assert "v1.3.1 never ran on staging" not in alice.locator("#request-notes").inner_text()
    assert alice.locator("textarea[name=reason]").input_value() == "ship the audit export"
    assert alice.locator("select[name=release]").input_value() == str(v130.pk)
