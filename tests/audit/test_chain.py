"""The hash chain verifies, the table refuses changes, and tampering is caught."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from approvals.audit import (
    GENESIS_HASH,
    Entry,
    audit_chain_verify,
    record,
    record_many,
    verify,
)
from approvals.models import AuditChainHead, AuditEvent, AuditVerification
from tests.audit.tampering import guard_lifted
from tests.audit.writers import write_concurrently

TABLE = AuditEvent._meta.db_table


def run_verify() -> str:
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def test_record_links_each_event_to_the_previous_one(events):
    assert events[0].id == 1 and events[0].prev_hash == GENESIS_HASH
    for previous, event in zip(events, events[1:], strict=False):
        assert event.id == previous.id + 1
        assert event.prev_hash == previous.hash
    head = AuditChainHead.objects.get()
    assert (head.last_event_id, head.last_hash) == (events[-1].id, events[-1].hash)


def test_audit_verify_reports_the_count_and_stores_the_result(events):
    assert run_verify().strip() == "5 events verified"
    stored = AuditVerification.objects.get()
    assert stored.ok and stored.events_verified == 5 and stored.broken_event_id is None


def test_the_hash_is_keyed(events, settings):
    settings.AUDIT_HMAC_KEY = "a different key"
    result = verify()
    assert not result.ok and result.broken_event_id == 1
    assert "hash mismatch" in result.reason


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {TABLE} SET actor_name = 'someone-else' WHERE id = 2",
        f"UPDATE {TABLE} SET data = '{{}}'",
        f"DELETE FROM {TABLE} WHERE id = 3",
        f"DELETE FROM {TABLE}",
    ],
)
def test_raw_sql_cannot_alter_or_remove_an_event(events, statement):
    before = list(AuditEvent.objects.order_by("id").values_list("id", "actor_name", "data"))
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert list(AuditEvent.objects.order_by("id").values_list("id", "actor_name", "data")) == before


@pytest.mark.postgres
def test_truncate_is_refused_on_postgres(events):
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"TRUNCATE {TABLE}")
    assert AuditEvent.objects.count() == 5


@pytest.mark.postgres
def test_free_text_and_verb_share_one_trigram_index_on_postgres(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [TABLE])
        indexes = dict(cursor.fetchall())
    assert "audit_search_trgm_idx" not in indexes  # replaced by migration 0006
    assert indexes["audit_verb_search_trgm_idx"].endswith(
        "USING gin (verb gin_trgm_ops, search_text gin_trgm_ops)"
    )


def test_the_orm_cannot_update_or_delete_either(events):
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(id=1).update(verb="deploy.cancelled")
    with pytest.raises(IntegrityError), transaction.atomic():
        events[0].delete()


def test_an_event_altered_with_the_trigger_disabled_is_caught(events):
    with guard_lifted() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET data = %s WHERE id = 2", [json.dumps({"comment": "approved!"})]
        )
    with pytest.raises(CommandError) as caught:
        run_verify()
    assert caught.value.returncode != 0
    assert "event #2" in str(caught.value) and "hash mismatch" in str(caught.value)
    stored = AuditVerification.objects.get()
    assert not stored.ok and stored.broken_event_id == 2
    assert AuditEvent.objects.filter(verb="audit.verification_failed").exists()


def test_a_rewritten_search_text_is_caught(events):
    with guard_lifted() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET search_text = 'nothing to see' WHERE id = 1")
    result = verify()
    assert (result.ok, result.broken_event_id) == (False, 1)
    assert "search text" in result.reason


def test_a_removed_event_is_caught(events):
    with guard_lifted() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = 3")
    result = verify()
    assert (result.ok, result.broken_event_id) == (False, 4)
    assert "missing" in result.reason


def test_a_removed_tail_is_caught_by_the_chain_head(events):
    with guard_lifted() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id >= 4")
    result = verify()
    assert not result.ok and result.broken_event_id == 5
    assert "removed from the end" in result.reason


def test_a_missing_guard_fails_verification(events):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_append_only_row")
        else:
            cursor.execute("DROP TRIGGER audit_append_only_update")
    result = verify()
    assert not result.ok and result.events_verified == 5
    assert "append-only trigger" in result.reason


def test_an_export_verifies_offline(client, viewer, events, tmp_path):
    client.force_login(viewer)
    response = client.get("/audit/export.jsonl")
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    out = io.StringIO()
    call_command("audit_verify", "--file", str(path), stdout=out)
    # The five events, the sign-in, and not the export's own record.
    assert out.getvalue().strip() == "6 events verified"

    lines = path.read_text().splitlines()
    tampered = json.loads(lines[2])
    tampered["actor_name"] = "someone-else"
    lines[2] = json.dumps(tampered)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CommandError, match="event #3: hash mismatch"):
        call_command("audit_verify", "--file", str(path))


def test_the_beat_task_stores_the_result(events, settings):
    from approvals.tasks import audit_verify

    assert settings.CELERY_BEAT_SCHEDULE["audit-verify"]["task"] == audit_verify.name
    assert audit_verify() is True
    assert audit_chain_verify().events_verified == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    def write(worker: int) -> None:
        for n in range(25):
            with transaction.atomic():
                record(actor="worker", verb="bench.written", data={"w": worker, "n": n})

    write_concurrently(write)
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert ids == list(range(1, 201))
    assert verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batches_and_single_events_from_concurrent_writers_form_one_chain():
    def write(worker: int) -> None:
        for n in range(10):
            with transaction.atomic():
                if worker % 2:
                    record(actor="worker", verb="bench.written", data={"w": worker, "n": n})
                else:
                    record_many(
                        [
                            Entry("worker", "bench.batched", data={"w": worker, "n": n, "i": i})
                            for i in range(3)
                        ]
                    )

    write_concurrently(write)
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert ids == list(range(1, 4 * 10 + 4 * 30 + 1))
    assert verify().ok


def test_a_batch_is_appended_in_order_like_single_events(events):
    before = AuditChainHead.objects.get()
    batch = record_many(
        [
            Entry("worker", "webhook.received", data={"n": 1}, ip="127.0.0.1"),
            Entry("system", "webhook.ignored", app="shop", data={"reason": "Unknown"}),
        ]
    )
    assert [event.id for event in batch] == [before.last_event_id + 1, before.last_event_id + 2]
    assert batch[0].prev_hash == before.last_hash and batch[1].prev_hash == batch[0].hash
    stored = AuditEvent.objects.get(id=batch[1].id)
    assert (stored.actor_name, stored.app_name, stored.search_text) == ("system", "shop", "unknown")
    head = AuditChainHead.objects.get()
    assert (head.last_event_id, head.last_hash) == (batch[1].id, batch[1].hash)
    assert record_many([]) == []
    assert verify().ok


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_log_and_restores_the_guard_roles_and_chain_head(events):
    from django.contrib.auth.models import Group

    from approvals import policy

    call_command("flush", interactive=False, verbosity=0)
    assert AuditEvent.objects.count() == 0
    assert set(Group.objects.values_list("name", flat=True)) == set(policy.ROLE_ORDER)
    assert record(actor="system", verb="demo.seeded").id == 1
    assert verify().ok  # the append-only triggers are back


def test_flush_refuses_to_wipe_a_database_that_is_not_a_test_database(events, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "NAME", "hotdash")
    monkeypatch.setitem(connection.settings_dict, "TEST", {})
    with pytest.raises(CommandError, match="append-only"):
        call_command("flush", interactive=False, verbosity=0)
    monkeypatch.undo()
    assert AuditEvent.objects.count() == len(events)
