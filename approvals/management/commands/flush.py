"""``flush`` that can empty the append-only audit table.

Django's flush (also what TransactionTestCase runs between tests) empties every table, which
the audit table's append-only triggers refuse. Emptying the whole database is a deliberate,
interactive operator act, so this lifts the guard for the flush alone and restores it in the
same transaction; nothing else can remove audit events.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import flush
from django.db import connections, transaction

from approvals.models import AuditEvent


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        database = options["database"]
        connection = connections[database]
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
