"""PostgreSQL session limits: statement, lock wait and idle-in-transaction timeouts."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from tests.foundation.settings_probe import run_probe

pytestmark = pytest.mark.postgres

LIMITS = {
    "statement_timeout": "30000",
    "lock_timeout": "10000",
    "idle_in_transaction_session_timeout": "60000",
}

# Run in a separate process so that the env settings are read as at startup, against the
# test database; it reports what its session says and what its queries ran into.
PROBE = """
import json, time
import django
django.setup()
from django.db import OperationalError, connection

def attempt(sql):
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
        error = None
    except OperationalError as exc:
        error = type(exc.__cause__).__name__
    return {"error": error, "seconds": time.monotonic() - started}

with connection.cursor() as cursor:
    cursor.execute("SHOW lock_timeout")
    lock_timeout = cursor.fetchone()[0]
    cursor.execute("SHOW statement_timeout")
    statement_timeout = cursor.fetchone()[0]
print(json.dumps({
    "lock_timeout": lock_timeout,
    "statement_timeout": statement_timeout,
    "lock": attempt("SELECT count(*) FROM django_content_type"),
    "sleep": attempt("SELECT pg_sleep(3)"),
}))
"""


def probe(**env: str) -> dict:
    return run_probe(PROBE, **env)


@pytest.mark.django_db
def test_sessions_carry_the_configured_limits():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(LIMITS)])
        assert dict(cursor.fetchall()) == LIMITS
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("30s",)


@pytest.mark.django_db(transaction=True)
def test_lock_wait_and_long_statement_fail_at_the_configured_limits():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE django_content_type IN ACCESS EXCLUSIVE MODE")
        seen = probe(DATABASE_LOCK_TIMEOUT_MS="300", DATABASE_STATEMENT_TIMEOUT_MS="1000")
    assert (seen["lock_timeout"], seen["statement_timeout"]) == ("300ms", "1s")
    assert seen["lock"]["error"] == "LockNotAvailable"
    assert 0.3 <= seen["lock"]["seconds"] < 1.0
    assert seen["sleep"]["error"] == "QueryCanceled"
    assert 1.0 <= seen["sleep"]["seconds"] < 2.0
