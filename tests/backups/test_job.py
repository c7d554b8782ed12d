"""The weekly backup job: it backs up, drills, prunes, records and audits; a failed drill is
notified and shown in red on /ops/, and the last verified backup stays listed (and kept)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from approvals.audit import record
from approvals.models import AuditEvent
from deployments.models import BackupRun, Notification
from deployments.services.backups import backup_prune
from deployments.tasks.backups import backup_scheduled
from tests.audit.tampering import TABLE, guard_lifted
from tests.engine.test_workers import wait_for


def test_the_job_is_on_the_beat_schedule_weekly():
    entry = settings.CELERY_BEAT_SCHEDULE["backup-and-drill"]
    assert entry["task"] == backup_scheduled.name
    assert entry["schedule"] == crontab(minute="0", hour="3", day_of_week="sun")


@pytest.mark.django_db(transaction=True)
def test_the_job_backs_up_drills_records_and_audits(demo, backup_dirs):
    admin = get_user_model().objects.get(username="admin")
    backup_scheduled(requested_by_id=admin.pk)

    run = BackupRun.objects.get()
    path = Path(run.path)
    assert run.result == BackupRun.Result.PASSED, run.problems
    assert path.parent == backup_dirs and path.name.startswith("hotdash-backup-")
    assert (path / "manifest.json").is_file()
    assert run.size_bytes == sum(item.stat().st_size for item in path.iterdir())
    assert run.requested_by == admin and run.duration_seconds > 0
    assert {check["name"] for check in run.details["checks"]} >= {"row counts", "audit chain"}
    assert run.problems == []

    event = AuditEvent.objects.get(verb="backup.verified")
    assert event.actor_name == "system"
    assert (event.target_type, event.target_id) == ("backuprun", str(run.pk))
    assert event.data["path"] == run.path and event.data["size_bytes"] == run.size_bytes
    assert event.data["requested_by"] == "admin" and event.data["problems"] == []


@pytest.mark.django_db(transaction=True)
def test_a_failed_drill_is_recorded_audited_notified_and_red_on_ops(demo, client, settings):
    demo.notification_webhook_url = "https://hooks.example.com/services/T0/B0/token"
    demo.notification_webhook_secret = "signing-secret"
    demo.save()
    settings.BACKUP_KEEP = 1
    backup_scheduled()
    verified = BackupRun.objects.get(result=BackupRun.Result.PASSED)
    event = record(actor="system", verb="deploy.requested", data={"reason": "ship it"})
    with guard_lifted() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET data = %s WHERE id = %s", ['{"reason": "x"}', event.id])

    backup_scheduled()

    failed = BackupRun.objects.exclude(pk=verified.pk).get()
    assert failed.result == BackupRun.Result.FAILED
    assert failed.problems == [
        f"audit chain: audit chain broken at event #{event.id}: hash mismatch: "
        "the event's fields were altered"
    ]
    # One backup is kept, and the newest verified one besides.
    assert Path(verified.path).is_dir() and Path(failed.path).is_dir()
    audited = AuditEvent.objects.get(verb="backup.failed")
    assert audited.data["problems"] == failed.problems
    notification = Notification.objects.get(event="backup.failed", channel="webhook")
    email = Notification.objects.get(event="backup.failed", channel="email")
    assert email.recipient.username == "admin" and email.dedup_key == f"backup:{failed.pk}"
    assert notification.app == demo and notification.deploy is None
    assert notification.payload["backup"] == {
        "id": failed.pk,
        "path": failed.path,
        "result": "failed",
    }
    assert f"broken at event #{event.id}" in notification.payload["text"]

    client.force_login(get_user_model().objects.get(username="dave"))
    html = client.get(reverse("ops")).content.decode()
    red = html[html.index('id="backup-failed"') : html.index('id="backup-last-verified"')]
    assert 'class="outcome outcome-bad" role="alert"' in html
    assert "state-failed" in red and "backup drill failed" in red
    assert f"audit chain broken at event #{event.id}" in red
    assert verified.path in html[html.index('id="backup-last-verified"') :]


def make_dirs(base: Path, *names: str) -> None:
    for name in names:
        (base / name).mkdir(parents=True)
        (base / name / "manifest.json").write_text("{}")


@pytest.mark.django_db
def test_retention_keeps_the_newest_n_and_the_newest_verified(backup_dirs):
    old = [f"hotdash-backup-2026010{day}T030000Z" for day in range(1, 6)]
    make_dirs(backup_dirs, *old, "not-a-backup")
    now = timezone.now()
    BackupRun.objects.create(
        started_at=now - timedelta(days=30),
        finished_at=now - timedelta(days=30),
        path=str(backup_dirs / old[0]),
        result=BackupRun.Result.PASSED,
    )
    BackupRun.objects.create(
        started_at=now, finished_at=now, path=str(backup_dirs / old[4]), result="failed"
    )

    assert backup_prune(keep=2) == [old[2], old[1]]
    remaining = sorted(item.name for item in backup_dirs.iterdir())
    assert remaining == [old[0], old[3], old[4], "not-a-backup"]


@pytest.mark.django_db(transaction=True)
def test_the_job_prunes_to_backup_keep_and_says_what_it_deleted(demo, backup_dirs, settings):
    settings.BACKUP_KEEP = 2
    old = ["hotdash-backup-20260101T030000Z", "hotdash-backup-20260108T030000Z"]
    make_dirs(backup_dirs, *old)

    backup_scheduled()

    run = BackupRun.objects.get()
    assert sorted(item.name for item in backup_dirs.iterdir()) == [old[1], Path(run.path).name]
    assert run.details["pruned"] == [old[0]]
    assert AuditEvent.objects.get(verb="backup.verified").data["pruned"] == [old[0]]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_run_backup_now_is_carried_out_by_a_real_worker(demo, client, start_worker, tmp_path):
    """The button's message reaches a worker process, which backs up, drills and records."""
    backups = tmp_path / "worker-backups"
    start_worker(
        "b1",
        extra_env={"BACKUP_DIR": str(backups), "AUDIT_ANCHOR_DIR": str(tmp_path / "anchors")},
    )
    admin = get_user_model().objects.get(username="admin")
    client.force_login(admin)
    assert client.post(reverse("ops-backup-now")).status_code == 302

    wait_for(BackupRun.objects.exists, timeout=60, what="the requested backup run")
    run = BackupRun.objects.get()
    assert run.result == BackupRun.Result.PASSED, run.problems
    assert run.requested_by == admin and Path(run.path).parent == backups
    verbs = list(
        AuditEvent.objects.filter(verb__startswith="backup.").values_list("verb", flat=True)
    )
    assert sorted(verbs) == ["backup.requested", "backup.verified"]
