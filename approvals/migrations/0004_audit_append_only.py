"""Make approvals_auditevent append-only in the database itself, and index its search text.

PostgreSQL: a row trigger refuses UPDATE and DELETE, a statement trigger refuses TRUNCATE.
SQLite: BEFORE UPDATE / BEFORE DELETE triggers abort. Both raise a constraint error, which
Django surfaces as IntegrityError. Free-text search uses a pg_trgm GIN index when the
extension is available (PostgreSQL only); without it the search is a filtered scan.
"""

from django.db import migrations

TABLE = "approvals_auditevent"

POSTGRES_INSTALL = f"""
CREATE OR REPLACE FUNCTION hotdash_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER audit_append_only_row BEFORE UPDATE OR DELETE ON {TABLE}
  FOR EACH ROW EXECUTE FUNCTION hotdash_audit_append_only();
CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON {TABLE}
  FOR EACH STATEMENT EXECUTE FUNCTION hotdash_audit_append_only();
"""
POSTGRES_REMOVE = f"""
DROP TRIGGER IF EXISTS audit_append_only_row ON {TABLE};
DROP TRIGGER IF EXISTS audit_append_only_truncate ON {TABLE};
DROP FUNCTION IF EXISTS hotdash_audit_append_only();
"""
SQLITE_INSTALL = [
    f"""CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END""",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_append_only_update",
    "DROP TRIGGER IF EXISTS audit_append_only_delete",
]
TRIGRAM_INDEX = (
    f"CREATE INDEX IF NOT EXISTS audit_search_trgm_idx ON {TABLE} "
    "USING gin (search_text gin_trgm_ops)"
)


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(POSTGRES_INSTALL)
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
            if cursor.fetchone():
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                cursor.execute(TRIGRAM_INDEX)
        elif vendor == "sqlite":
            for statement in SQLITE_INSTALL:
                cursor.execute(statement)


def remove(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("DROP INDEX IF EXISTS audit_search_trgm_idx")
            cursor.execute(POSTGRES_REMOVE)
        elif vendor == "sqlite":
            for statement in SQLITE_REMOVE:
                cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0003_audit_search_and_verification")]

    operations = [migrations.RunPython(install, remove)]
