"""``python manage.py restore_drill PATH``: prove that the backup in directory PATH restores.

Restores it into a scratch database (PostgreSQL: a new database, dropped at the end; SQLite: a
temporary file) and checks it against its manifest: the dump's sha256, the applied migrations,
the row count of every table, the audit chain head, and the audit chain verification that
``audit_verify`` runs (anchors written after the backup are expected to be ahead of it).
Prints every check; exits 0 only when all pass, else 1 naming those that failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from deployments.services.backups import restore_drill


class Command(BaseCommand):
    help = "Restore the backup in directory PATH into a scratch database and verify it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path, help="a directory written by `backup`")

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        result = restore_drill(path)
        for line in result.lines():
            self.stdout.write(line)
        if not result.ok:
            failed = ", ".join(check.name for check in result.failed)
            raise CommandError(f"restore drill FAILED ({failed})", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"Restore drill passed: {path}"))
