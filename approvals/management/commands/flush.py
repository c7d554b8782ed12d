"""``flush`` that can empty the append-only audit table of a TEST database only.

Django's flush (also what TransactionTestCase runs between tests) empties every table, which
the audit table's append-only triggers refuse. On a test database this lifts the guard for the
flush alone and restores it in the same transaction. On any other database the command refuses:
the audit log is evidence and no management command may wipe it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.core.management.commands import flush
from django.db import connections, transaction
from django.db.backends.base.creation import TEST_DATABASE_PREFIX

from approvals.models import AuditEvent


def _is_test_database(settings_dict: dict[str, Any]) -> bool:
    name = str(settings_dict["NAME"])
    test_name = (settings_dict.get("TEST") or {}).get("NAME")
    return name == str(test_name) if test_name else name.startswith(TEST_DATABASE_PREFIX)


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        database = options["database"]
        connection = connections[database]
        if not _is_test_database(connection.settings_dict):
            raise CommandError(
                "The audit log is append-only: flush refuses to empty a database that is not "
                "a test database."
            )
        table = connection.ops.quote_name(AuditEvent._meta.db_table)
        with transaction.atomic(using=database), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
                super().handle(**options)
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            elif connection.vendor == "sqlite":
                cursor.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                    [AuditEvent._meta.db_table],
                )
                triggers = cursor.fetchall()
                for name, _sql in triggers:
                    cursor.execute(f"DROP TRIGGER {connection.ops.quote_name(name)}")
                super().handle(**options)
                for _name, sql in triggers:
                    cursor.execute(sql)
            else:
                super().handle(**options)
