"""deploy_run survives a database outage: the same message runs again after a backoff."""

from __future__ import annotations

import pytest
from celery.signals import task_prerun
from django.db import OperationalError, connection

from deployments.models import Deploy
from deployments.tasks.deploys import deploy_run
from tests.engine.conftest import make_deploy


def database_down_for(queries: int):
    """An execute wrapper failing the next ``queries`` statements as psycopg does when
    PostgreSQL restarts under an open connection. Savepoints pass: the test's own transaction
    (around every test) must survive to be rolled back."""
    failed: list[str] = []

    def wrapper(execute, sql, params, many, context):
        if len(failed) < queries and not sql.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            failed.append(sql)
            raise OperationalError("terminating connection due to administrator command")
        return execute(sql, params, many, context)

    return wrapper, failed


@pytest.fixture
def attempts():
    """The (args, retries) of every deploy_run attempt that started."""
    seen: list[tuple[list, int]] = []

    def record(sender=None, args=None, **_):
        if sender.name == deploy_run.name:
            seen.append((list(args), sender.request.retries))

    task_prerun.connect(record, weak=False)
    yield seen
    task_prerun.disconnect(record)


def test_a_run_hitting_a_database_error_is_retried_with_the_same_message(
    production, release_130, requester, run_messages, attempts
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    message = run_messages[-1]
    assert message[0] == deploy.pk and len(message) == 3  # deploy id, token, Fly app
    wrapper, failed = database_down_for(1)
    with connection.execute_wrapper(wrapper):
        result = deploy_run.apply(args=message)
    assert result.successful(), result.traceback
    assert len(failed) == 1
    assert attempts == [(message, 0), (message, 1)]
    deploy.refresh_from_db()
    assert deploy.state != Deploy.State.QUEUED  # the retry claimed the environment and ran
    assert deploy.started_at is not None


def test_a_database_that_stays_down_fails_the_message_after_a_few_retries(
    production, release_130, requester, run_messages, attempts
):
    deploy = make_deploy(production, release_130, requested_by=requester)
    wrapper, failed = database_down_for(1000)
    with connection.execute_wrapper(wrapper):
        result = deploy_run.apply(args=run_messages[-1])
    assert result.failed()
    assert isinstance(result.result, OperationalError)
    assert len(attempts) == deploy_run.max_retries + 1 == 6
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.QUEUED  # left for the reconciler, nothing half-done
