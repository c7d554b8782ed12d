"""What an attacker with database superuser rights does to the audit log, for the tests."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import connection

from approvals.models import AuditEvent

TABLE = AuditEvent._meta.db_table


@contextmanager
def guard_lifted():
    """What an attacker with DDL rights does: switch the append-only triggers off."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
            yield cursor
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name=%s", [TABLE]
            )
            triggers = cursor.fetchall()
            assert len(triggers) == 2
            for name, _sql in triggers:
                cursor.execute(f"DROP TRIGGER {name}")
            yield cursor
            for _name, sql in triggers:
                cursor.execute(sql)
