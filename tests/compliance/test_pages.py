"""/ops/compliance/ (latest per app, history with what changed, Markdown export, Run now) and an
app's Secrets page (rotation due dates, recording a rotation done outside HotDash)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from approvals.models import AuditEvent
from deployments.models import ComplianceRun
from deployments.services.compliance import compliance_sweep_job
from tests.compliance.conftest import statuses
from tests.security.canary import task_messages


@pytest.fixture
def swept(app, sandbox, sweep):
    """Two runs: the demo as seeded, then with force pushes allowed and FLY_API_TOKEN rotated."""
    sweep()
    sandbox.change_protection(allow_force_pushes=True)
    sandbox.age_secret("github", "FLY_API_TOKEN", 5)
    return sweep()


def test_the_page_shows_each_apps_latest_run_and_what_changed(client, viewer, swept):
    client.force_login(viewer)
    html = client.get(reverse("deployments:compliance")).content.decode()
    assert 'id="app-hot-dash"' in html
    assert "main: force pushes are allowed" in html
    assert "codecov/patch: failure (not required)" in html
    assert html.count("state-failure") >= 2  # the app's result and its failing check
    assert "state-warning" in html and "state-passing" in html
    history = html[html.index('id="compliance-history"') :]
    row = history[history.index(f'id="run-{swept.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Branch protection" in row and "Rotation" in row  # newly failing, fixed
    assert 'id="compliance-run-now"' not in html  # viewers cannot run it


def test_a_runs_markdown_export_is_the_gap_report(client, viewer, swept):
    client.force_login(viewer)
    response = client.get(reverse("deployments:compliance-run-markdown", args=[swept.pk]))
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    text = response.content.decode()
    assert text.startswith("# Compliance gap report: hot-dash\n\nDate: ")
    assert "Result: **FAIL** (1 of 9 checks failing)" in text
    assert "| Branch protection | **FAIL** | main: force pushes are allowed |" in text
    assert "| Recent CI on the default branch | **WARN** |" in text
    assert "| Rotation | **PASS** |" in text
    detail = client.get(reverse("deployments:compliance-run", args=[swept.pk])).content.decode()
    assert "Gap report (Markdown)" in detail and "Newly failing" in detail


def test_run_now_is_for_deployers_audited_and_queued(
    client, requester, viewer, app, sandbox, django_capture_on_commit_callbacks
):
    url = reverse("deployments:compliance-run-now")
    client.force_login(viewer)
    assert client.post(url, {"app": app.name}).status_code == 403
    client.force_login(requester)
    assert (
        'id="compliance-run-now"' in client.get(reverse("deployments:compliance")).content.decode()
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"app": app.name})
    assert response.status_code == 302
    [event] = AuditEvent.objects.filter(verb="compliance.requested")
    assert event.actor_name == "requester" and event.app_name == app.name
    [message] = [m for m in task_messages() if m["task"].endswith("compliance_sweep_job")]
    assert message["kwargs"] == {"app_id": app.pk, "requested_by_id": requester.pk}
    [run] = compliance_sweep_job(**message["kwargs"])
    assert (run.trigger, run.requested_by) == (ComplianceRun.Trigger.BUTTON, requester)
    assert AuditEvent.objects.get(verb="compliance.swept").actor_name == "requester"


def test_the_secrets_page_highlights_overdue_and_records_a_rotation(
    client, requester, viewer, app, sandbox, sweep, time_machine
):
    time_machine.move_to(sandbox.clock.now(), tick=False)
    sweep()
    page = reverse("deployments:app-secrets", args=[app.pk])
    client.force_login(viewer)
    html = client.get(page).content.decode()
    for name in ("FLY_API_TOKEN", "HOTDASH_API_TOKEN", "SECRET_KEY", "DATABASE_URL"):
        assert name in html
    assert "GitHub Actions" in html and "Fly production" in html and "Fly staging" in html
    overdue = html[html.index('class="overdue"') :]
    assert "FLY_API_TOKEN" in overdue[: overdue.index("</tr>")]
    assert html.count('class="overdue"') == 1
    rotated = reverse("deployments:secret-rotated", args=[app.pk])
    form = {"location": "github-actions", "name": "FLY_API_TOKEN", "comment": "new token in 1P"}
    assert client.post(rotated, form).status_code == 403

    client.force_login(requester)
    assert client.post(rotated, {**form, "comment": " "}).status_code == 422
    assert client.post(rotated, {**form, "name": "NOPE"}).status_code == 422
    assert client.post(rotated, form).status_code == 302
    [event] = AuditEvent.objects.filter(verb="secret.rotation_recorded")
    assert event.data["comment"] == "new token in 1P" and event.data["secret"] == "FLY_API_TOKEN"
    assert 'class="overdue"' not in client.get(page).content.decode()
    assert statuses(sweep())["rotation"] == "pass"
