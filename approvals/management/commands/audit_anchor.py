"""``manage.py audit_anchor``: verify the audit chain, then export its head as a new anchor.

What the hourly beat job does, on demand. The anchor (sequence, hash, event count, UTC time,
signed with AUDIT_HMAC_KEY) is a new read-only file in AUDIT_ANCHOR_DIR; an existing file is
never overwritten. Exits non-zero when the chain does not verify (nothing is anchored) or the
anchor cannot be written.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from approvals.audit import VerifyResult, audit_chain_anchor


class Command(BaseCommand):
    help = "Verify the audit chain and write its head to a new signed, read-only anchor file."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            verification, anchor = audit_chain_anchor()
        except FileExistsError as exc:
            raise CommandError(
                f"anchor not written: {exc.filename} exists and anchors are never overwritten",
                returncode=1,
            ) from exc
        except OSError as exc:
            raise CommandError(f"anchor not written: {exc}", returncode=1) from exc
        if anchor is None:
            summary = VerifyResult.of(verification).summary()
            raise CommandError(f"not anchored: {summary}", returncode=1)
        self.stdout.write(
            f"anchored event #{anchor.sequence} ({anchor.event_count} events) in {anchor.path}"
        )
