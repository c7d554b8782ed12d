"""Hourly anchors: the chain head exported outside the database catches a removed tail."""

from __future__ import annotations

import io
import json
import logging
import stat
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.audit import anchor_read, audit_anchor_write, record, verify
from approvals.models import AuditChainHead, AuditEvent, AuditVerification
from tests.audit.tampering import TABLE, guard_lifted

NOON = datetime(2026, 8, 1, 12, 0, 0, tzinfo=UTC)


def anchor_command() -> str:
    out = io.StringIO()
    call_command("audit_anchor", stdout=out)
    return out.getvalue()


def verify_command() -> str:
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def files(directory) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def truncate_tail_and_rewrite_head(keep: int) -> None:
    """Delete every event after #keep and point the chain head at #keep, as a superuser can."""
    with guard_lifted() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id > %s", [keep])
    kept = AuditEvent.objects.get(id=keep)
    AuditChainHead.objects.filter(id=1).update(last_event_id=keep, last_hash=kept.hash)


def test_an_anchor_holds_the_signed_head_in_a_new_read_only_file(events, anchor_dir):
    with time_machine.travel(NOON, tick=False):
        out = anchor_command()
    path = anchor_dir / "audit-anchor-20260801T120000Z-5.json"
    assert out.strip() == f"anchored event #5 (5 events) in {path}"
    assert files(anchor_dir) == [path.name]  # no partial file left beside it
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    content = json.loads(path.read_text())
    assert {key: content[key] for key in ("sequence", "hash", "event_count", "anchored_at")} == {
        "sequence": 5,
        "hash": events[-1].hash,
        "event_count": 5,
        "anchored_at": "2026-08-01T12:00:00Z",
    }
    assert anchor_read(path).sequence == 5  # the signature checks out
    assert AuditVerification.objects.get().ok  # anchoring verified the chain first

    record(actor="system", verb="deploy.requested")  # the chain grows past its anchor
    assert verify_command().strip() == "6 events verified"


def test_an_anchor_is_never_overwritten(events, anchor_dir):
    first = audit_anchor_write(now=NOON)
    before = first.path.read_bytes()
    with pytest.raises(FileExistsError) as refused:
        audit_anchor_write(now=NOON.replace(microsecond=500))
    assert refused.value.filename == str(first.path)
    # Through the command (the same second, no new event): refused with exit code 1.
    with time_machine.travel(NOON, tick=False):
        with pytest.raises(CommandError, match="exists and anchors are never overwritten") as cli:
            anchor_command()
        assert cli.value.returncode == 1
        record(actor="system", verb="deploy.requested")
        anchor_command()  # a new head is a new anchor, even within the second
    assert first.path.read_bytes() == before
    assert files(anchor_dir) == [
        "audit-anchor-20260801T120000Z-5.json",
        "audit-anchor-20260801T120000Z-6.json",
    ]


def test_a_removed_tail_with_a_rewritten_head_fails_against_the_anchor(
    events, anchor_dir, settings, tmp_path, caplog
):
    anchor = audit_anchor_write(now=NOON)
    truncate_tail_and_rewrite_head(keep=3)

    # The database alone cannot tell: the shortened chain is consistent with its head.
    settings.AUDIT_ANCHOR_DIR = tmp_path / "no-anchors"
    assert verify().ok
    settings.AUDIT_ANCHOR_DIR = anchor_dir

    with (
        caplog.at_level(logging.ERROR, logger="approvals.audit"),
        pytest.raises(CommandError) as caught,
    ):
        verify_command()
    message = str(caught.value)
    assert caught.value.returncode == 1
    assert f"behind anchor {anchor.path}" in message and "events #4–#5 were removed" in message
    assert message.startswith("audit chain broken at event #4:")
    stored = AuditVerification.objects.get()
    assert (stored.ok, stored.broken_event_id) == (False, 4)
    assert str(anchor.path) in stored.reason
    assert AuditEvent.objects.filter(verb="audit.verification_failed").count() == 1
    assert any(
        r.levelno == logging.ERROR and str(anchor.path) in r.getMessage() for r in caplog.records
    )

    # The failure events re-fill #4 and #5 with other hashes: still caught, never re-anchored.
    with pytest.raises(CommandError, match="event #5 was removed"):
        anchor_command()
    with pytest.raises(CommandError, match="event #5 does not have the hash anchored"):
        anchor_command()
    assert files(anchor_dir) == [anchor.path.name]


def test_a_head_rewritten_behind_the_anchor_fails_even_with_the_events_still_there(
    events, anchor_dir
):
    anchor = audit_anchor_write(now=NOON)
    AuditChainHead.objects.filter(id=1).update(last_event_id=2, last_hash=events[1].hash)
    result = verify()
    assert (result.ok, result.broken_event_id) == (False, 3)
    assert f"at event #2, behind anchor {anchor.path}" in result.reason
    assert "events #3–#5" in result.reason


def forge(path, **changes):
    content = json.loads(path.read_text())
    content.update(changes)
    return {key: value for key, value in content.items() if value is not None}


@pytest.mark.parametrize(
    ("forged", "why"),
    [
        (lambda path: forge(path, sequence=99), "bad signature: forged or altered"),
        (lambda path: forge(path, signature="0" * 64), "bad signature: forged or altered"),
        (lambda path: forge(path, signature="é" * 64), "bad signature: forged or altered"),
        (lambda path: forge(path, signature=None), "not an anchor: fields are missing"),
        (lambda path: "not json {", "unreadable: JSONDecodeError"),
    ],
    ids=["altered", "bad-hmac", "not-hex", "unsigned", "garbage"],
)
def test_a_forged_anchor_file_is_reported(events, anchor_dir, forged, why):
    genuine = audit_anchor_write(now=NOON)
    content = forged(genuine.path)
    fake = anchor_dir / "audit-anchor-20260801T130000Z-99.json"
    fake.write_text(content if isinstance(content, str) else json.dumps(content))

    with pytest.raises(CommandError) as caught:
        verify_command()
    assert caught.value.returncode == 1
    assert f"1 anchor file(s) cannot be trusted: {fake} ({why})" in str(caught.value)
    # The forgery is not taken as the newest anchor: the genuine one still matches the chain.
    assert "behind anchor" not in str(caught.value)
    assert not AuditVerification.objects.get().ok

    fake.unlink()
    assert verify().ok


def test_an_anchor_signed_with_another_key_is_reported(events, anchor_dir, settings):
    settings.AUDIT_HMAC_KEY = "an attacker's key"
    forged = audit_anchor_write(now=NOON)
    settings.AUDIT_HMAC_KEY = "sandbox-audit-key"
    result = verify()
    assert not result.ok
    assert f"{forged.path} (bad signature: forged or altered)" in result.reason


def test_the_hourly_beat_job_verifies_then_anchors(events, anchor_dir, settings):
    from approvals.tasks import audit_verify

    entry = settings.CELERY_BEAT_SCHEDULE["audit-verify"]
    assert (entry["task"], entry["schedule"]) == (audit_verify.name, 3600.0)
    with time_machine.travel(NOON, tick=False):
        assert audit_verify.apply().get() is True
    assert files(anchor_dir) == ["audit-anchor-20260801T120000Z-5.json"]
    assert AuditVerification.objects.get().ok

    truncate_tail_and_rewrite_head(keep=4)
    with time_machine.travel(NOON.replace(hour=13), tick=False):
        assert audit_verify.apply().get() is False  # alerted and stored, and nothing anchored
    assert files(anchor_dir) == ["audit-anchor-20260801T120000Z-5.json"]
    failed = AuditVerification.objects.order_by("-id").first()
    assert (failed.ok, failed.broken_event_id) == (False, 5)
