"""Sign in with GitHub through the real views and the sandbox's OAuth pages (in-process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.approvals.conftest import pending, production, request_deploy, v130  # noqa: F401
from tests.fixtures.sandbox import SandboxTransport
from tests.webhooks.conftest import hooked_sandbox, process_deliveries  # noqa: F401


@pytest.fixture
def github_sign_in(sandbox) -> Callable[..., Any]:
    """``github_sign_in(client, login)``: start on HotDash, choose ``login`` on the sandbox's
    "sign in as" page, follow GitHub's redirect back; returns the callback's response."""

    def sign_in(client, login: str, *, next_url: str = "") -> Any:
        start = client.post("/accounts/github/", {"next": next_url})
        assert start.status_code == 302, start.content
        with httpx.Client(transport=SandboxTransport(app=sandbox.app)) as browser:
            chosen = browser.post(start["Location"], data={"login": login})
        assert chosen.status_code == 302, chosen.text
        return client.get(chosen.headers["location"])

    return sign_in
