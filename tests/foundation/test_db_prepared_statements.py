"""DATABASE_PREPARED_STATEMENTS (default on): server-side binding, queries prepared from
their 5th run on a connection; off for a transaction-pooling proxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection

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


def probe(**env: str) -> dict:
    db = connection.settings_dict
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    url = f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    inherited = {k: v for k, v in os.environ.items() if k != "DATABASE_PREPARED_STATEMENTS"}
    environment = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "hotdash.settings",
        "DATABASE_URL": url,
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=environment,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


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
