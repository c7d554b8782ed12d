"""``manage.py audit_verify``: walk the audit hash chain and report the first break.

Without arguments it verifies the database, including that it is not behind the newest anchor
in AUDIT_ANCHOR_DIR (see ``audit_anchor``), and stores the result shown on the Ops and Audit
pages. ``--file export.jsonl`` verifies an unfiltered JSON Lines export offline
(with the same AUDIT_HMAC_KEY). Exits 0 with "N events verified", else non-zero.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from approvals.audit import VerifyResult, audit_chain_verify, verify_rows


def _export_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise CommandError(f"{path}:{number}: not JSON ({exc.msg})") from exc


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exit non-zero at the first broken event."

    def add_arguments(self, parser):
        parser.add_argument(
            "--file", type=Path, help="verify an unfiltered /audit/export.jsonl file instead"
        )

    def handle(self, *args: Any, file: Path | None = None, **options: Any) -> None:
        if file is not None:
            if not file.is_file():
                raise CommandError(f"{file}: no such file")
            try:  # exports are in chain order, so the file streams through
                result = verify_rows(_export_rows(file))
            except KeyError as exc:
                raise CommandError(f"{file}: a line lacks the field {exc}") from exc
        else:
            result = VerifyResult.of(audit_chain_verify())
        if not result.ok:
            raise CommandError(result.summary(), returncode=1)
        self.stdout.write(result.summary())
