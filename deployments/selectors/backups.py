"""Reads of the backup job's record, for the Ops and Runbook pages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from deployments.models import BackupRun

# The database dump's file name in a backup directory, per database vendor.
DUMP_NAMES = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}


@dataclass(frozen=True)
class BackupStatus:
    recent: list[BackupRun]  # newest first
    last_verified: BackupRun | None
    directory: Path
    keep: int
    schedule: str  # crontab fields, UTC

    @property
    def last(self) -> BackupRun | None:
        return self.recent[0] if self.recent else None

    @property
    def failing(self) -> bool:
        """The newest run failed: shown in red until a run passes again."""
        return self.last is not None and self.last.result == BackupRun.Result.FAILED


def backup_status(*, limit: int = 5) -> BackupStatus:
    recent = list(BackupRun.objects.select_related("requested_by")[:limit])
    last_verified = next((run for run in recent if run.result == BackupRun.Result.PASSED), None)
    # Fewer runs than the limit: they are all of them, there is no older one to look for.
    if last_verified is None and len(recent) == limit:
        last_verified = BackupRun.objects.filter(result=BackupRun.Result.PASSED).first()
    return BackupStatus(
        recent=recent,
        last_verified=last_verified,
        directory=Path(settings.BACKUP_DIR),
        keep=settings.BACKUP_KEEP,
        schedule=settings.BACKUP_SCHEDULE,
    )
