"""The GitHub App's private key (and the JWTs and installation tokens made from it) appear in
no log line, error, database row, page or command output while HotDash authenticates as the App:
reading the installations, adding an app and syncing its releases, a 401 and its renewal, and a
GitHub error that ends in an exception."""

from __future__ import annotations

import io
import logging

import pytest
from django.core.management import call_command
from django.urls import reverse

from deployments.models import App
from deployments.services.releases import ReleaseSyncFailed, release_sync
from hotdash.sandbox import demo
from tests.security.canary import database_dump, leaks

DEMO_REPO = f"{demo.REPO_OWNER}/{demo.REPO_NAME}"
LOGGERS = ("httpx", "httpcore", "hotdash", "deployments", "approvals")


@pytest.mark.django_db
def test_the_app_key_and_its_tokens_never_show(client, admin_user, sandbox, github_app, caplog):
    for name in ("", *LOGGERS):
        caplog.set_level(logging.DEBUG, logger=name or None)
    key_lines = [line for line in github_app.splitlines() if "-----" not in line]
    client.force_login(admin_user)

    pages = [client.post(reverse("deployments:installations-refresh"), follow=True)]
    pages.append(client.get(reverse("deployments:app-add"), {"repository": DEMO_REPO}))
    out = io.StringIO()
    call_command("app_add", DEMO_REPO, "--yes", "--as", admin_user.username, stdout=out)
    with sandbox.lock:
        sandbox.github_app.revoke_tokens()
    app = App.objects.get()
    release_sync(app=app, actor=admin_user)  # renews the revoked token once
    sandbox.add_fault("status", status=401, service="github", path=r"/releases$")
    with pytest.raises(ReleaseSyncFailed) as failed:
        release_sync(app=app, actor=admin_user)
    pages.append(client.get(reverse("deployments:app-setup", args=[app.pk])))

    with sandbox.lock:
        tokens = list(sandbox.github_app.tokens)
    assert len(tokens) == 2  # the revoked token was renewed, and both were really used
    canaries = {f"key line {n}": line for n, line in enumerate(key_lines)}
    canaries |= {f"installation token {n}": token for n, token in enumerate(tokens)}
    sources = {
        "logs": caplog.text,
        "error": f"{failed.value!s} {failed.value!r} {failed.value.__cause__!r}",
        "command output": out.getvalue(),
        "database": database_dump(""),
        **{f"page {n}": page.content.decode() for n, page in enumerate(pages)},
    }
    assert all(sources.values())
    assert leaks(canaries, sources) == []
