"""Free text with a verb filter: one trigram GIN index over (verb, search_text).

With two separate indexes PostgreSQL ANDs two bitmaps and must read the whole posting list
of a common word ("incident": 3% of a million events) even when the verb prefix matches a few
thousand. In one multi-column GIN index the rare verb trigrams drive the scan and the common
word's entries are skipped, so "environment. + incident" reads ~900 entries instead of ~37,000.
The index also serves free text alone, so it replaces audit_search_trgm_idx (migration 0004).
PostgreSQL with pg_trgm only, as in 0004; elsewhere free text stays a filtered scan.
"""

from django.db import migrations

TABLE = "approvals_auditevent"
OLD_INDEX = (
    f"CREATE INDEX IF NOT EXISTS audit_search_trgm_idx ON {TABLE} "
    "USING gin (search_text gin_trgm_ops)"
)
NEW_INDEX = (
    f"CREATE INDEX IF NOT EXISTS audit_verb_search_trgm_idx ON {TABLE} "
    "USING gin (verb gin_trgm_ops, search_text gin_trgm_ops)"
)


def _has_trigrams(schema_editor) -> bool:
    if schema_editor.connection.vendor != "postgresql":
        return False
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        return cursor.fetchone() is not None


def forwards(apps, schema_editor):
    if _has_trigrams(schema_editor):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(NEW_INDEX)
            cursor.execute("DROP INDEX IF EXISTS audit_search_trgm_idx")


def backwards(apps, schema_editor):
    if _has_trigrams(schema_editor):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(OLD_INDEX)
            cursor.execute("DROP INDEX IF EXISTS audit_verb_search_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [("approvals", "0005_audit_actor_verb_index")]

    operations = [migrations.RunPython(forwards, backwards)]
