"""A rolled-back change leaves no audit event and no chain-head movement behind."""

from __future__ import annotations

import contextlib

import pytest
from django.db import transaction

from approvals.audit import record, verify
from approvals.models import AuditChainHead, AuditEvent
from deployments.models import Environment
from deployments.services.environments import environment_lock
from tests.audit.writers import write_concurrently


class Abort(Exception):
    """Raised after the service call so the surrounding transaction rolls back."""


def head() -> tuple[int, str]:
    return AuditChainHead.objects.values_list("last_event_id", "last_hash").get()


@pytest.fixture
def production(demo) -> Environment:
    return Environment.objects.get(app=demo, name="production")


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_event_and_no_head_move(production, admin_user):
    before, events_before = head(), AuditEvent.objects.count()
    with pytest.raises(Abort), transaction.atomic():
        environment_lock(environment=production, actor=admin_user, reason="incident 7")
        # Inside the transaction the change and its evidence were both written...
        assert AuditEvent.objects.filter(verb="environment.locked").count() == 1
        assert head()[0] == before[0] + 1
        raise Abort
    # ...and both went with the rollback.
    assert not AuditEvent.objects.filter(verb="environment.locked").exists()
    assert AuditEvent.objects.count() == events_before
    assert head() == before
    production.refresh_from_db()
    assert not production.is_locked
    assert verify().ok
    # The next event takes the rolled-back event's place in the chain.
    after = record(actor="system", verb="deploy.requested")
    assert (after.id, after.prev_hash) == (before[0] + 1, before[1])
    assert verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_inside_a_committed_transaction(production, admin_user):
    with transaction.atomic():
        first = record(actor="system", verb="deploy.requested")
        with pytest.raises(Abort), transaction.atomic():
            environment_lock(environment=production, actor=admin_user, reason="incident 7")
            raise Abort
        second = record(actor="system", verb="deploy.cancelled")
    assert (second.id, second.prev_hash) == (first.id + 1, first.hash)
    assert not AuditEvent.objects.filter(verb="environment.locked").exists()
    assert head() == (second.id, second.hash)
    assert verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_rollbacks_and_commits_leave_a_contiguous_chain(production, admin_user):
    """Eight threads lock the environment ten times each on their own connections; every other
    transaction raises after the service call. Writers queued behind a rolled-back one on the
    chain-head lock must continue from the head it never moved."""
    before = head()

    def write(worker: int) -> None:
        for n in range(10):
            with contextlib.suppress(Abort), transaction.atomic():
                environment_lock(environment=production, actor=admin_user, reason=f"w{worker} n{n}")
                if n % 2:
                    raise Abort

    write_concurrently(write)
    locked = AuditEvent.objects.filter(verb="environment.locked")
    assert sorted(locked.values_list("data__reason", flat=True)) == sorted(
        f"w{w} n{n}" for w in range(8) for n in range(0, 10, 2)
    )
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert ids == list(range(1, before[0] + 41))
    assert head()[0] == before[0] + 40
    assert verify().ok
