"""Backups of HotDash's own database, and the restore drill that proves each one.

A backup is a directory holding the dump and ``manifest.json``:

- PostgreSQL: ``database.dump``, pg_dump's custom format, taken in an exported snapshot;
- SQLite: ``database.sqlite3``, a copy made with SQLite's online backup API.

The manifest (written last, so a directory without one is no backup) records the time, the
database vendor, the applied migrations, the row count of every table and the audit chain
head, all read from the same snapshot as the dump, and the dump's size and sha256.

``restore_drill`` restores a backup into a scratch database (PostgreSQL: a new database that
it drops again; SQLite: a temporary file) and checks it against its manifest: the checksum,
the migrations, every table's row count, the chain head, and the audit verification that
``audit_verify`` runs, against the restored copy. ``backup_run`` is the weekly job: backup,
drill, retention, a BackupRun row, an audit event, and a notification when it fails.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.utils import timezone
from psycopg import sql

from approvals import policy
from approvals.audit import GENESIS_HASH, record, verify
from approvals.models import AuditChainHead
from deployments import task_names
from deployments.models import BackupRun
from deployments.selectors.backups import DUMP_NAMES
from deployments.services.notifications import notification_broadcast
from hotdash import queue
from hotdash.version import __version__

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "hotdash-backup/1"
VENDOR_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
# Directories the job writes under BACKUP_DIR; retention only ever deletes these.
DIRECTORY_PREFIX = "hotdash-backup-"


class BackupError(Exception):
    """The backup could not be written; nothing usable was left behind."""


class RestoreFailed(Exception):
    """The dump could not be restored into the scratch database."""


# --- What a database holds ---------------------------------------------------------------------


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def database_facts(cursor: Any, vendor: str) -> dict[str, Any]:
    """Applied migrations, every table's row count and the audit chain head, read through a
    DB-API ``cursor`` (so within whatever snapshot its transaction holds)."""
    if vendor == "postgresql":
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
    else:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    tables = [name for (name,) in cursor.fetchall()]
    row_counts = {}
    for table in tables:
        cursor.execute(f"SELECT COUNT(*) FROM {_quoted(table)}")
        row_counts[table] = cursor.fetchone()[0]
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    migrations = [f"{app}.{name}" for app, name in cursor.fetchall()]
    cursor.execute(
        f"SELECT last_event_id, last_hash FROM {_quoted(AuditChainHead._meta.db_table)} "
        "WHERE id = 1"
    )
    head = cursor.fetchone() or (0, GENESIS_HASH)
    return {
        "migrations": migrations,
        "row_counts": row_counts,
        "audit_head": {"last_event_id": head[0], "last_hash": head[1]},
    }


# --- PostgreSQL: connection parameters from settings, never a password on a command line ------


def _pg_params(database: dict[str, Any]) -> dict[str, str]:
    params = {
        "host": database.get("HOST", ""),
        "port": str(database.get("PORT", "")),
        "user": database.get("USER", ""),
        "password": database.get("PASSWORD", ""),
        "dbname": database["NAME"],
    }
    return {key: value for key, value in params.items() if value}


def _pg_connect(database: dict[str, Any], *, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(**_pg_params(database), autocommit=autocommit)


def _pg_env(database: dict[str, Any]) -> dict[str, str]:
    """The environment of pg_dump/pg_restore: libpq's PG* variables, PGPASSWORD included."""
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD"}
    params = _pg_params(database)
    return {**os.environ, **{names[key]: value for key, value in params.items() if key in names}}


def _pg_run(database: dict[str, Any], args: list[str], *, error: type[Exception]) -> None:
    """Run a PostgreSQL client program; ``error`` with its last error lines when it fails,
    is missing or outlives BACKUP_TIMEOUT_SECONDS."""
    try:
        done = subprocess.run(
            args,
            env=_pg_env(database),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=settings.BACKUP_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise error(f"{args[0]} is not installed (not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise error(
            f"{args[0]} ran longer than BACKUP_TIMEOUT_SECONDS "
            f"({settings.BACKUP_TIMEOUT_SECONDS} s)"
        ) from None
    if done.returncode:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise error(f"{args[0]} failed (exit {done.returncode}): {tail}")


# --- Backup ------------------------------------------------------------------------------------


def _dump_postgresql(database: dict[str, Any], dump: Path) -> dict[str, Any]:
    """pg_dump in the snapshot this transaction exports, so the manifest's counts are the
    dump's. The exporting transaction stays open until pg_dump has finished."""
    with _pg_connect(database) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            facts = database_facts(cursor, "postgresql")
            _pg_run(
                database,
                [
                    "pg_dump",
                    "--format=custom",
                    "--no-password",
                    f"--snapshot={snapshot}",
                    f"--file={dump}",
                    f"--dbname={database['NAME']}",
                ],
                error=BackupError,
            )
    return facts


def _dump_sqlite(database: dict[str, Any], dump: Path) -> dict[str, Any]:
    """A consistent copy through SQLite's online backup API; the facts are read from it."""
    source = sqlite3.connect(database["NAME"], timeout=20)
    try:
        target = sqlite3.connect(dump)
        try:
            source.backup(target)
            # One self-contained file: no -wal/-shm beside it.
            target.execute("PRAGMA journal_mode=DELETE")
            return database_facts(target.cursor(), "sqlite")
        finally:
            target.close()
    finally:
        source.close()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backup_write(path: Path) -> dict[str, Any]:
    """Write a backup of the default database into the directory ``path`` (created; it must
    not exist or be empty: backups are never overwritten). Returns the manifest.

    BackupError when it cannot be written; whatever it wrote is removed again.
    """
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    if vendor not in DUMP_NAMES:
        raise BackupError(f"backups support PostgreSQL and SQLite, not {vendor}")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError(f"{path} exists and is not an empty directory")
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    dump = path / DUMP_NAMES[vendor]
    partial = path / f".{MANIFEST_NAME}.partial"
    created_at = timezone.now().astimezone(UTC)
    database = settings.DATABASES[DEFAULT_DB_ALIAS]
    try:
        dumper = _dump_postgresql if vendor == "postgresql" else _dump_sqlite
        facts = dumper(database, dump)
        manifest = {
            "format": MANIFEST_FORMAT,
            "created_at": created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "vendor": vendor,
            "hotdash_version": __version__,
            "dump": {"file": dump.name, "size": dump.stat().st_size, "sha256": file_sha256(dump)},
            **facts,
        }
        partial.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", "utf-8")
        partial.replace(path / MANIFEST_NAME)
    except BaseException as exc:
        dump.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
        if created:
            path.rmdir()
        if isinstance(exc, (OSError, sqlite3.Error, psycopg.Error)):
            raise BackupError(f"{type(exc).__name__}: {exc}") from exc
        raise
    log.info("Backup of the %s database written to %s", vendor, path)
    return manifest


# --- Restore drill -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class DrillResult:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def lines(self) -> list[str]:
        return [f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]


def _manifest_read(path: Path) -> dict[str, Any]:
    """The manifest, checked for shape; RestoreFailed says what is wrong with it."""
    try:
        manifest = json.loads((path / MANIFEST_NAME).read_text("utf-8"))
    except FileNotFoundError:
        raise RestoreFailed(f"{path / MANIFEST_NAME} does not exist: not a backup") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RestoreFailed(f"{MANIFEST_NAME} is unreadable: {exc}") from None
    shape = {
        "format": str,
        "vendor": str,
        "dump": dict,
        "migrations": list,
        "row_counts": dict,
        "audit_head": dict,
    }
    wrong = [key for key, kind in shape.items() if not isinstance(manifest.get(key), kind)]
    if wrong:
        raise RestoreFailed(f"{MANIFEST_NAME} lacks or mistypes: {', '.join(wrong)}")
    if manifest["format"] != MANIFEST_FORMAT:
        raise RestoreFailed(f"unknown manifest format {manifest['format']!r}")
    if manifest["vendor"] not in DUMP_NAMES:
        raise RestoreFailed(f"unknown database vendor {manifest['vendor']!r}")
    return manifest


def _checksum_check(path: Path, manifest: dict[str, Any]) -> Check:
    expected = manifest["dump"]
    dump = path / DUMP_NAMES[manifest["vendor"]]
    if expected.get("file") != dump.name or not dump.is_file():
        return Check("dump checksum", False, f"{dump} is missing")
    size, digest = dump.stat().st_size, file_sha256(dump)
    if size == expected.get("size") and digest == expected.get("sha256"):
        return Check("dump checksum", True, f"sha256 {digest} ({size} bytes) matches")
    return Check(
        "dump checksum",
        False,
        f"the dump was truncated or altered: {size} bytes with sha256 {digest}, "
        f"the manifest says {expected.get('size')} bytes with sha256 {expected.get('sha256')}",
    )


@contextmanager
def _database_alias(name: str) -> Iterator[str]:
    """A database alias for this thread, configured like the default one but on database
    ``name``; it is not added to settings.DATABASES."""
    default = connections[DEFAULT_DB_ALIAS]
    alias = f"restore_drill_{secrets.token_hex(4)}"
    connections[alias] = type(default)({**default.settings_dict, "NAME": name}, alias)
    try:
        yield alias
    finally:
        connections[alias].close()
        del connections[alias]


@contextmanager
def _restored_postgresql(dump: Path) -> Iterator[tuple[str, str]]:
    """pg_restore into a new scratch database, dropped again at the end."""
    database = settings.DATABASES[DEFAULT_DB_ALIAS]
    scratch = f"{database['NAME'][:40]}_drill_{secrets.token_hex(4)}"
    try:
        with _pg_connect(database, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    except psycopg.Error as exc:
        raise RestoreFailed(f"could not create the scratch database: {exc}") from None
    try:
        _pg_run(
            database,
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--no-comments",
                "--exit-on-error",
                "--no-password",
                f"--dbname={scratch}",
                str(dump),
            ],
            error=RestoreFailed,
        )
        with _database_alias(scratch) as alias:
            yield alias, f"restored with pg_restore into the scratch database {scratch}"
    finally:
        try:
            with _pg_connect(database, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(scratch)
                    )
                )
        except psycopg.Error:
            log.exception("Could not drop the scratch database %s: drop it by hand", scratch)


@contextmanager
def _restored_sqlite(dump: Path) -> Iterator[tuple[str, str]]:
    """A copy of the dump in a temporary directory, integrity-checked, removed at the end."""
    with tempfile.TemporaryDirectory(prefix="hotdash-drill-") as scratch_dir:
        scratch = Path(scratch_dir) / "restored.sqlite3"
        shutil.copyfile(dump, scratch)
        try:
            conn = sqlite3.connect(scratch)
            try:
                integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise RestoreFailed(f"not a readable SQLite database: {exc}") from None
        if integrity != ["ok"]:
            raise RestoreFailed(f"integrity check failed: {'; '.join(integrity[:3])}")
        with _database_alias(str(scratch)) as alias:
            yield alias, "copied to a temporary SQLite file; integrity check ok"


def _compare(manifest: dict[str, Any], facts: dict[str, Any]) -> list[Check]:
    """The restored copy's migrations, row counts and chain head against the manifest."""
    checks = []
    expected, restored = manifest["migrations"], facts["migrations"]
    if expected == restored:
        checks.append(Check("migrations", True, f"{len(restored)} applied migrations match"))
    else:
        missing = sorted(set(expected) - set(restored))
        extra = sorted(set(restored) - set(expected))
        checks.append(
            Check(
                "migrations",
                False,
                f"differ from the manifest: missing {', '.join(missing) or 'none'}; "
                f"not in the manifest {', '.join(extra) or 'none'}",
            )
        )
    expected, restored = manifest["row_counts"], facts["row_counts"]
    differences = [
        f"{table}: manifest {expected.get(table, 'no table')}, "
        f"restored {restored.get(table, 'no table')}"
        for table in sorted(set(expected) | set(restored))
        if expected.get(table) != restored.get(table)
    ]
    if differences:
        checks.append(Check("row counts", False, "; ".join(differences)))
    else:
        rows = sum(restored.values())
        checks.append(Check("row counts", True, f"{len(restored)} tables, {rows} rows match"))
    expected, restored = manifest["audit_head"], facts["audit_head"]
    head = f"event #{restored['last_event_id']}"
    if expected == restored:
        checks.append(Check("audit chain head", True, f"{head} as in the manifest"))
    else:
        checks.append(
            Check(
                "audit chain head",
                False,
                f"restored at {head}, the manifest says event #{expected.get('last_event_id')}",
            )
        )
    return checks


def restore_drill(path: Path) -> DrillResult:
    """Restore the backup in directory ``path`` into a scratch database and check it against
    its manifest; every check is reported, passed or failed. Never changes the live database.
    """
    try:
        manifest = _manifest_read(path)
    except RestoreFailed as exc:
        return DrillResult((Check("manifest", False, str(exc)),))
    vendor = manifest["vendor"]
    here = connections[DEFAULT_DB_ALIAS].vendor
    if vendor != here:
        detail = (
            f"the backup is of a {VENDOR_NAMES[vendor]} database; the drill restores into the "
            f"configured database's server ({VENDOR_NAMES.get(here, here)})"
        )
        return DrillResult((Check("manifest", False, detail),))
    checks = [
        Check("manifest", True, f"{VENDOR_NAMES[vendor]} backup of {manifest.get('created_at')}")
    ]
    checks.append(_checksum_check(path, manifest))
    restored = _restored_postgresql if vendor == "postgresql" else _restored_sqlite
    try:
        with restored(path / DUMP_NAMES[vendor]) as (alias, how):
            checks.append(Check("restore", True, how))
            with connections[alias].cursor() as cursor:
                checks += _compare(manifest, database_facts(cursor, vendor))
            result = verify(using=alias, restored=True)
            checks.append(Check("audit chain", result.ok, result.summary()))
    except RestoreFailed as exc:
        checks.append(Check("restore", False, str(exc)))
    except (OSError, DatabaseError) as exc:
        checks.append(Check("drill", False, f"{type(exc).__name__}: {exc}"))
    return DrillResult(tuple(checks))


# --- The weekly job ----------------------------------------------------------------------------


def _new_directory(started_at: datetime) -> Path:
    base = Path(settings.BACKUP_DIR)
    name = f"{DIRECTORY_PREFIX}{started_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    path, number = base / name, 1
    while path.exists():
        number += 1
        path = base / f"{name}-{number}"
    return path


def _size(path: Path) -> int:
    if not path.is_dir():
        return 0
    return sum(item.stat().st_size for item in path.iterdir() if item.is_file())


def backup_prune(*, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` backup directories under BACKUP_DIR, never the
    newest one whose drill passed. Returns the names deleted."""
    base = Path(settings.BACKUP_DIR)
    if not base.is_dir():
        return []
    found = sorted(
        (
            item
            for item in base.iterdir()
            if item.is_dir() and item.name.startswith(DIRECTORY_PREFIX)
        ),
        key=lambda item: item.name,
        reverse=True,
    )
    verified = (
        BackupRun.objects.filter(result=BackupRun.Result.PASSED)
        .values_list("path", flat=True)
        .first()
    )
    deleted = []
    for item in found[keep:]:
        if verified and item == Path(verified):
            continue
        shutil.rmtree(item)
        deleted.append(item.name)
    if deleted:
        log.info("Deleted %d old backups: %s", len(deleted), ", ".join(deleted))
    return deleted


def backup_run(*, requested_by_id: int | None = None) -> BackupRun:
    """The job: back up into a new directory under BACKUP_DIR, drill it, keep the newest
    BACKUP_KEEP, and record the outcome (a BackupRun row and a ``backup.verified`` or
    ``backup.failed`` event, by ``system``); a failure is also notified."""
    requester = get_user_model().objects.filter(pk=requested_by_id).first()
    started_at, clock = timezone.now(), time.monotonic()
    path = _new_directory(started_at)
    details: dict[str, Any] = {"vendor": connections[DEFAULT_DB_ALIAS].vendor}
    drill = None
    try:
        backup_write(path)
        details["backup_seconds"] = round(time.monotonic() - clock, 3)
        drill = restore_drill(path)
        details["drill_seconds"] = round(time.monotonic() - clock - details["backup_seconds"], 3)
        details["checks"] = [asdict(check) for check in drill.checks]
    except Exception as exc:  # noqa: BLE001 - whatever broke, the outcome is recorded
        log.exception("Backup into %s failed", path)
        details["error"] = f"{type(exc).__name__}: {exc}"
    passed = drill is not None and drill.ok
    # The newest directory is always kept, so this run's is; an older verified one is too.
    details["pruned"] = backup_prune(keep=settings.BACKUP_KEEP)
    with transaction.atomic():
        run = BackupRun.objects.create(
            started_at=started_at,
            finished_at=timezone.now(),
            path=str(path),
            size_bytes=_size(path),
            result=BackupRun.Result.PASSED if passed else BackupRun.Result.FAILED,
            details=details,
            requested_by=requester,
        )
        record(
            actor="system",
            verb="backup.verified" if passed else "backup.failed",
            target=run,
            data={
                "path": run.path,
                "size_bytes": run.size_bytes,
                "duration_seconds": round(run.duration_seconds, 3),
                "problems": run.problems,
                "pruned": details["pruned"],
                "requested_by": requester.get_username() if requester else "",
            },
        )
        if not passed:
            log.error("Backup drill failed for %s: %s", path, "; ".join(run.problems))
            notification_broadcast(
                event="backup.failed",
                key=f"backup:{run.pk}",
                headline=f"Backup drill failed: {path.name}",
                lines=run.problems,
                subject={"backup": {"id": run.pk, "path": run.path, "result": run.result}},
            )
    return run


def backup_request(*, actor: Any, ip: str | None = None) -> None:
    """An admin's "Run backup now": audited, then the job is queued for a worker."""
    if not policy.can_administer(actor):
        raise PermissionDenied("Only admins may start a backup.")
    with transaction.atomic():
        record(
            actor=actor,
            verb="backup.requested",
            data={"backup_dir": str(settings.BACKUP_DIR)},
            ip=ip,
        )
        # Broker down: logged, and the admin sees no new run.
        transaction.on_commit(lambda: queue.send(task_names.BACKUP_RUN, requested_by_id=actor.pk))
