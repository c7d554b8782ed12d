"""One active deploy per environment, under concurrent workers (threads, own connections)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction

from approvals.models import AuditEvent
from deployments.models import Deploy
from deployments.services.deploys import deploy_execute
from tests.engine.conftest import make_deploy, pending_token


def test_the_database_refuses_a_second_active_deploy(production, release_130, requester):
    first = make_deploy(production, release_130, requested_by=requester)
    second = make_deploy(production, release_130, requested_by=requester)
    Deploy.objects.filter(pk=first.pk).update(state=Deploy.State.RUNNING)

    with pytest.raises(IntegrityError), transaction.atomic():
        Deploy.objects.filter(pk=second.pk).update(state=Deploy.State.VERIFYING)


def test_a_claim_that_loses_to_the_index_stays_queued(production, release_130, requester, driver):
    first = make_deploy(production, release_130, requested_by=requester)
    second = make_deploy(production, release_130, requested_by=requester)
    # The first one is running but no longer queued ahead: only the index stops the second.
    Deploy.objects.filter(pk=first.pk).update(state=Deploy.State.RUNNING)

    assert driver.run_once(second) is not None

    second.refresh_from_db()
    assert second.state == Deploy.State.QUEUED
    assert second.logs.last().message.endswith(f"busy with deploy #{first.pk}.")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_workers_never_run_two_deploys_of_one_environment(
    production, release_130, requester, sandbox, settings
):
    settings.DEPLOY_POLL_SECONDS = 0
    settings.DEPLOY_QUEUE_POLL_SECONDS = 0
    production.health_http_grace_seconds = production.health_tcp_grace_seconds = 0
    production.verification_window_seconds = 1
    production.save()
    sandbox.world.clock.speed = 50.0
    sandbox.world.clock.frozen = False
    deploys = [make_deploy(production, release_130, requested_by=requester) for _ in range(3)]
    ids = [d.pk for d in deploys]
    overlaps: list[list[int]] = []
    done = threading.Event()
    start = threading.Barrier(9)

    def monitor() -> None:
        start.wait()
        try:
            while not done.is_set():
                active = list(
                    Deploy.objects.filter(pk__in=ids, state__in=Deploy.ACTIVE_STATES).values_list(
                        "pk", flat=True
                    )
                )
                if len(active) > 1:
                    overlaps.append(active)
                time.sleep(0.005)
        finally:
            connection.close()

    def worker(number: int) -> None:
        start.wait()
        try:
            while not done.is_set():
                for pk in ids:
                    token = pending_token(Deploy.objects.get(pk=pk))
                    deploy_execute(deploy_id=pk, token=token, worker=f"t{number}")
        finally:
            connection.close()

    threads = [threading.Thread(target=monitor)] + [
        threading.Thread(target=worker, args=(n,)) for n in range(8)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if not Deploy.objects.filter(pk__in=ids).exclude(state=Deploy.State.SUCCEEDED).exists():
            break
        time.sleep(0.1)
    done.set()
    for thread in threads:
        thread.join(timeout=30)

    finished = list(Deploy.objects.filter(pk__in=ids).order_by("started_at"))
    assert [d.state for d in finished] == [Deploy.State.SUCCEEDED] * 3, [
        (d.pk, d.state, d.error) for d in finished
    ]
    assert overlaps == []
    # The audit chain orders events totally: each start comes after the previous end.
    events = AuditEvent.objects.filter(verb__in=("deploy.started", "deploy.succeeded"))
    order = [
        (e.target_id, e.verb) for e in events.filter(target_id__in=map(str, ids)).order_by("id")
    ]
    assert order == [
        (str(pk), verb) for pk in ids for verb in ("deploy.started", "deploy.succeeded")
    ]
    assert [d.pk for d in finished] == ids  # first come, first served
