"""A Celery task really executes in a separate worker process started by the test."""

from __future__ import annotations

import time

import pytest

from deployments.models import WorkerHeartbeat
from deployments.tasks.ops import worker_heartbeat


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_task_executes_in_a_worker_process(start_worker):
    worker = start_worker("heartbeat")
    worker_heartbeat.delay()
    deadline = time.monotonic() + 30
    while not WorkerHeartbeat.objects.filter(hostname__startswith="heartbeat@").exists():
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.2)
    assert worker.process.poll() is None
