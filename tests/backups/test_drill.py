"""``backup`` and ``restore_drill`` against the configured database (SQLite, or PostgreSQL
on the PostgreSQL run): what a backup holds, and each way a drill must fail."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from approvals.audit import audit_anchor_write, record
from approvals.models import AuditChainHead, AuditEvent
from tests.audit.tampering import TABLE, guard_lifted

pytestmark = pytest.mark.django_db(transaction=True)


def rewrite_manifest(path, change) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def failed_checks(output: str) -> list[str]:
    return [
        line.split(":")[0].removeprefix("FAIL ")
        for line in output.splitlines()
        if line.startswith("FAIL")
    ]


def test_a_backup_holds_the_dump_and_a_manifest_of_the_same_moment(demo, backup, drill):
    path, manifest = backup()
    head = AuditChainHead.objects.get(id=1)
    dump = path / manifest["dump"]["file"]
    assert sorted(item.name for item in path.iterdir()) == sorted([dump.name, "manifest.json"])
    assert manifest["vendor"] == connection.vendor
    assert manifest["dump"]["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert manifest["dump"]["size"] == dump.stat().st_size
    assert "deployments.0007_backup_run" in manifest["migrations"]
    assert manifest["row_counts"]["approvals_auditevent"] == AuditEvent.objects.count()
    assert manifest["row_counts"]["auth_user"] == 5  # the demo users
    assert manifest["audit_head"] == {
        "last_event_id": head.last_event_id,
        "last_hash": head.last_hash,
    }

    code, output = drill(path)
    assert code == 0, output
    assert failed_checks(output) == []
    for check in ("dump checksum", "restore", "migrations", "row counts", "audit chain head"):
        assert f"ok   {check}:" in output
    assert f"ok   audit chain: {head.last_event_id} events verified" in output


def test_sqlite_backups_are_one_self_contained_database_file(demo, backup, drill):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite run checks the SQLite copy")
    path, _ = backup()
    dump = path / "database.sqlite3"
    assert dump.read_bytes().startswith(b"SQLite format 3\0")
    with sqlite3.connect(dump) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert drill(path)[0] == 0
    assert sorted(item.name for item in path.iterdir()) == ["database.sqlite3", "manifest.json"]


@pytest.mark.postgres
def test_postgres_backups_are_pg_dump_custom_format_and_the_scratch_database_is_dropped(
    demo, backup, drill
):
    path, _ = backup()
    assert (path / "database.dump").read_bytes().startswith(b"PGDMP")
    code, output = drill(path)
    assert code == 0, output
    assert "restored with pg_restore into the scratch database" in output
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", ["%\\_drill\\_%"])
        assert cursor.fetchall() == []


def test_a_truncated_dump_fails_the_drill(demo, backup, drill):
    path, manifest = backup()
    dump = path / manifest["dump"]["file"]
    dump.write_bytes(dump.read_bytes()[: manifest["dump"]["size"] // 2])

    code, output = drill(path)
    assert code == 1
    assert "dump checksum" in failed_checks(output)
    assert "the dump was truncated or altered" in output
    assert "restore drill FAILED (dump checksum" in output


def test_an_altered_manifest_count_fails_naming_the_table(demo, backup, drill):
    path, manifest = backup()
    users = manifest["row_counts"]["auth_user"]
    rewrite_manifest(path, lambda m: m["row_counts"].update(auth_user=users + 1))

    code, output = drill(path)
    assert code == 1
    assert failed_checks(output) == ["row counts"]
    assert f"auth_user: manifest {users + 1}, restored {users}" in output


def test_a_tampered_audit_event_fails_the_chain_check(demo, backup, drill):
    """Rewritten in the database before the backup: the backup is faithful, the chain is not."""
    event = record(actor="system", verb="deploy.requested", data={"reason": "ship it"})
    with guard_lifted() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET data = %s WHERE id = %s", [json.dumps({"reason": "x"}), event.id]
        )
    path, _ = backup()

    code, output = drill(path)
    assert code == 1
    assert failed_checks(output) == ["audit chain"]
    assert f"audit chain broken at event #{event.id}: hash mismatch" in output


def test_an_audit_event_tampered_in_the_backup_file_fails_the_chain_check(demo, backup, drill):
    """Someone with the backup storage rewrites an event and the manifest's checksum."""
    if connection.vendor != "sqlite":
        pytest.skip("edits the SQLite copy in place")
    event = record(actor="system", verb="deploy.requested", data={"reason": "ship it"})
    path, _ = backup()
    dump = path / "database.sqlite3"
    with sqlite3.connect(dump) as copy:
        triggers = copy.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", [TABLE]
        ).fetchall()
        for name, _sql in triggers:
            copy.execute(f"DROP TRIGGER {name}")
        copy.execute(f'UPDATE {TABLE} SET data = \'{{"reason": "x"}}\' WHERE id = ?', [event.id])
        for _name, sql in triggers:
            copy.execute(sql)
    copy.close()
    data = dump.read_bytes()
    rewrite_manifest(
        path,
        lambda m: m["dump"].update(size=len(data), sha256=hashlib.sha256(data).hexdigest()),
    )

    code, output = drill(path)
    assert code == 1
    assert failed_checks(output) == ["audit chain"]
    assert f"at event #{event.id}: hash mismatch" in output


def test_anchors_written_after_the_backup_do_not_fail_its_drill(demo, backup, drill):
    audit_anchor_write()  # an anchor the backup has reached: it must agree
    path, _ = backup()
    record(actor="system", verb="deploy.requested", data={"reason": "later"})
    audit_anchor_write()  # ahead of the backup, as every later anchor is

    code, output = drill(path)
    assert code == 0, output


def test_the_drill_refuses_a_directory_without_a_manifest_and_backup_never_overwrites(
    demo, backup, drill, tmp_path
):
    path, _ = backup()
    with pytest.raises(CommandError, match="exists and is not an empty directory"):
        call_command("backup", str(path))

    (path / "manifest.json").unlink()
    code, output = drill(path)
    assert code == 1
    assert "manifest.json does not exist: not a backup" in output
