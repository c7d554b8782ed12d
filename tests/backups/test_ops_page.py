"""/ops/ lists the last verified backup for everyone; admins may run one now (POST, CSRF,
admin role, audited)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals.models import AuditEvent
from deployments.models import BackupRun
from deployments.selectors.backups import backup_status

pytestmark = pytest.mark.django_db


def run(result: str, *, days_ago: int, size: int = 2048) -> BackupRun:
    started = timezone.now() - timedelta(days=days_ago)
    return BackupRun.objects.create(
        started_at=started,
        finished_at=started + timedelta(seconds=3),
        path=f"/backups/hotdash-backup-{days_ago}",
        size_bytes=size,
        result=result,
        details={"checks": [{"name": "restore", "ok": result == "passed", "detail": "x"}]},
    )


def test_ops_shows_the_last_verified_backup(client, viewer):
    run("passed", days_ago=14, size=1024)
    latest = run("passed", days_ago=7, size=3 * 1024 * 1024)
    client.force_login(viewer)
    html = client.get(reverse("ops")).content.decode()
    shown = html[html.index('id="backup-last-verified"') :]
    assert "drill passed" in shown
    assert latest.path in shown and "3.0\xa0MB" in shown and "3.0 s" in shown
    assert latest.started_at.strftime("%Y-%m-%d %H:%M") in shown
    assert 'id="backup-failed"' not in html
    assert 'id="backup-now"' not in html  # admins only
    assert reverse("ops-runbook") in html


def test_ops_says_when_there_is_no_backup_yet(client, viewer):
    client.force_login(viewer)
    html = client.get(reverse("ops")).content.decode()
    assert "none yet" in html[html.index('id="backup-last-verified"') :]


def test_a_newer_failed_run_is_red_until_one_passes(client, viewer):
    run("passed", days_ago=7)
    run("failed", days_ago=1)
    client.force_login(viewer)
    html = client.get(reverse("ops")).content.decode()
    assert 'class="outcome outcome-bad" role="alert"' in html and "restore: x" in html
    run("passed", days_ago=0)
    assert 'id="backup-failed"' not in client.get(reverse("ops")).content.decode()


def csrf_client(user) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    html = client.get(reverse("ops")).content.decode()
    return client, html


def test_an_admin_runs_a_backup_now(admin_user, django_capture_on_commit_callbacks):
    client, html = csrf_client(admin_user)
    assert 'id="backup-now"' in html
    token = client.cookies["csrftoken"].value
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("ops-backup-now"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == reverse("ops")
    assert len(callbacks) == 1  # the job's message, sent once the audit event is committed
    event = AuditEvent.objects.get(verb="backup.requested")
    assert event.actor_name == admin_user.username and event.ip == "127.0.0.1"


@pytest.mark.parametrize("role", ["viewer", "requester", "approver", "outsider"])
def test_only_admins_may_run_a_backup(request, role, client):
    client.force_login(request.getfixturevalue(role))
    assert client.post(reverse("ops-backup-now")).status_code == 403
    assert not AuditEvent.objects.filter(verb="backup.requested").exists()


def test_running_a_backup_needs_a_post_with_a_csrf_token(admin_user):
    client, _ = csrf_client(admin_user)
    assert client.get(reverse("ops-backup-now")).status_code == 405
    assert client.post(reverse("ops-backup-now")).status_code == 403
    assert not AuditEvent.objects.filter(verb="backup.requested").exists()
    assert AuditEvent.objects.filter(verb="request.csrf_refused").exists()


def test_the_last_verified_backup_is_found_behind_the_recent_failed_ones(
    django_assert_num_queries,
):
    """The recent runs are one query; an older passed run is looked for only when all of the
    recent ones failed and there may be older ones."""
    with django_assert_num_queries(1):
        assert backup_status().last_verified is None
    passed = run("passed", days_ago=30)
    for days_ago in range(5, 0, -1):
        run("failed", days_ago=days_ago)
    with django_assert_num_queries(2):
        status = backup_status()
    assert status.last_verified == passed and status.failing
