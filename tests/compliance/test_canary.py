"""No secret value reaches a page, log line, report, export, notification, audit event or
database column: canary values in Fly secrets and in a secret-scanning alert go through a
sweep, every report format, every compliance page and a recorded rotation."""

from __future__ import annotations

import json
import logging

from django.core.management import CommandError, call_command
from django.urls import reverse

from deployments.models import Notification
from hotdash.sandbox import demo
from tests.security.canary import canary_values, database_dump, leaks

LOGGERS = ("", "httpx", "httpcore", "hotdash", "deployments", "approvals")


def test_secret_values_appear_nowhere(client, requester, app, sandbox, sweep, caplog, capsys):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    values = canary_values()
    canaries = {
        "production secret": values["SECRET_KEY"],
        "staging secret": values["FLY_API_TOKEN"],
        "leaked secret": values["GITHUB_TOKEN"],
        "signing secret": values["NOTIFICATION_WEBHOOK_SECRET"],
    }
    app.notification_webhook_secret = canaries["signing secret"]
    app.save()
    sandbox.fly.put_secrets(demo.PRODUCTION_FLY_APP, {"SECRET_KEY": canaries["production secret"]})
    sandbox.fly.put_secrets(demo.STAGING_FLY_APP, {"SECRET_KEY": canaries["staging secret"]})
    sandbox.add_secret_alert(canaries["leaked secret"])

    run = sweep()
    assert run.checks and not run.error
    reports = []
    for fmt in ("text", "markdown", "json"):
        try:
            call_command("compliance_sweep", "--format", fmt)
        except CommandError as error:
            reports.append(str(error))
        reports.append(capsys.readouterr().out)
    client.force_login(requester)
    pages = [
        reverse("deployments:compliance"),
        reverse("deployments:compliance-run", args=[run.pk]),
        reverse("deployments:compliance-run-markdown", args=[run.pk]),
        reverse("deployments:app-secrets", args=[app.pk]),
    ]
    rotated = client.post(
        reverse("deployments:secret-rotated", args=[app.pk]),
        {"location": "fly:production", "name": "SECRET_KEY", "comment": "rotated in flyctl"},
    )
    assert rotated.status_code == 302
    html = [client.get(page).content.decode() for page in pages]
    assert "SECRET_KEY" in html[-1] and "1 open secret-scanning alert" in html[0]
    payloads = json.dumps(list(Notification.objects.values_list("payload", flat=True)))

    sources = {
        "captured logs": caplog.text,
        "reports": "\n".join(reports),
        "pages": "\n".join(html),
        "notifications": payloads,
        # The signing secret's own column is its store; every other column is checked.
        "database": database_dump(canaries["signing secret"]),
    }
    assert all(sources.values())
    assert leaks(canaries, sources) == []
    # The values were never asked for: no revealing secret reads, alerts with the secret hidden.
    assert not [r for r in sandbox.calls(path=".*/secrets") if "show_secrets" in r.query]
    alerts = sandbox.calls(path=".*/secret-scanning/alerts")
    assert alerts and all(r.query.get("hide_secret") == ["true"] for r in alerts)
