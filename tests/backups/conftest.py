from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command


@pytest.fixture(autouse=True)
def backup_dirs(settings, tmp_path):
    """Each test's own BACKUP_DIR, and its own AUDIT_ANCHOR_DIR (anchors outlive the test
    database: another test's would not match this test's chain)."""
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.AUDIT_ANCHOR_DIR = tmp_path / "anchors"
    return settings.BACKUP_DIR


@pytest.fixture
def backup(tmp_path):
    """Run ``manage.py backup`` into a new directory; returns (directory, manifest)."""

    def make(name: str = "backup") -> tuple[Path, dict]:
        path = tmp_path / name
        call_command("backup", str(path), stdout=io.StringIO())
        return path, json.loads((path / "manifest.json").read_text())

    return make


@pytest.fixture
def drill():
    """Run ``manage.py restore_drill``: (exit code, everything it printed)."""

    def run(path: Path) -> tuple[int, str]:
        out = io.StringIO()
        try:
            call_command("restore_drill", str(path), stdout=out)
        except CommandError as exc:
            return exc.returncode, f"{out.getvalue()}{exc}"
        return 0, out.getvalue()

    return run
