"""``python manage.py backup PATH``: write a backup of HotDash's database into directory PATH.

PATH must not exist or be empty. It receives the dump (PostgreSQL: ``database.dump``, pg_dump
custom format; SQLite: ``database.sqlite3``, an online-backup copy) and ``manifest.json`` (time,
vendor, applied migrations, row count per table, audit chain head, the dump's size and sha256).
Check it with ``restore_drill PATH``. Records nothing in the database; the weekly job does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from deployments.services.backups import BackupError, backup_write


class Command(BaseCommand):
    help = "Write a consistent backup (dump + manifest.json) of the database into directory PATH."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path, help="a new (or empty) directory")

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        try:
            manifest = backup_write(path)
        except BackupError as exc:
            raise CommandError(f"backup failed: {exc}", returncode=1) from exc
        dump, counts = manifest["dump"], manifest["row_counts"]
        self.stdout.write(
            f"Backup of the {manifest['vendor']} database written to {path}: {dump['file']} "
            f"({dump['size']} bytes, sha256 {dump['sha256']}) and manifest.json; "
            f"{len(counts)} tables, {sum(counts.values())} rows, "
            f"audit chain at event #{manifest['audit_head']['last_event_id']}."
        )
