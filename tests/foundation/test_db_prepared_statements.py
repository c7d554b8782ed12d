"""DATABASE_PREPARED_STATEMENTS (default on): server-side binding, queries prepared from
their 5th run on a connection; off for a transaction-pooling proxy."""

from __future__ import annotations

import pytest

from tests.foundation.settings_probe import run_probe

pytestmark = pytest.mark.postgres

# Run in a separate process so that the env settings are read as at startup, against the
# test database; it reports its connection's options and what the server prepared.
PROBE = """
import json
import django
django.setup()
from django.contrib.contenttypes.models import ContentType
from django.db import connection

for _ in range(6):
    list(ContentType.objects.filter(app_label="auth").values_list("model", flat=True))
with connection.cursor() as cursor:
    cursor.execute("SELECT statement FROM pg_prepared_statements")
    prepared = [row[0] for row in cursor.fetchall()]
print(json.dumps({
    "server_side_binding": connection.features.uses_server_side_binding,
    "prepare_threshold": connection.connection.prepare_threshold,
    "prepared": prepared,
}))
"""


def probe(**env: str | None) -> dict:
    return run_probe(PROBE, **{"DATABASE_PREPARED_STATEMENTS": None, **env})


@pytest.mark.django_db(transaction=True)
def test_by_default_parameters_bind_server_side_and_repeated_queries_are_prepared():
    seen = probe()
    assert seen["server_side_binding"] is True
    assert seen["prepare_threshold"] == 5
    assert any("django_content_type" in statement for statement in seen["prepared"])


@pytest.mark.django_db(transaction=True)
def test_turned_off_parameters_are_quoted_client_side_and_nothing_is_prepared():
    seen = probe(DATABASE_PREPARED_STATEMENTS="false")
    assert seen["server_side_binding"] is False
    assert seen["prepare_threshold"] is None
    assert seen["prepared"] == []
