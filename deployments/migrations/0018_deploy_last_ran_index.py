"""Each environment's last deploy that ran (deployments.selectors.activity, on the Overview and
the environment page): the first entry of this partial index per environment, instead of
sorting the environment's whole history. Its order (finished_at DESC NULLS LAST, id DESC) is
the query's; SQLite cannot index NULLS LAST, so PostgreSQL only, as approvals 0006.
"""

from django.db import migrations

INDEX = (
    "CREATE INDEX IF NOT EXISTS deploy_env_last_ran_idx ON deployments_deploy "
    "(environment_id, finished_at DESC NULLS LAST, id DESC) "
    "WHERE started_at IS NOT NULL AND state IN "
    "('succeeded', 'failed', 'rejected', 'expired', 'cancelled', 'superseded')"
)


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(INDEX)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("DROP INDEX IF EXISTS deploy_env_last_ran_idx")


class Migration(migrations.Migration):
    dependencies = [("deployments", "0017_upstream_request_counts")]

    operations = [migrations.RunPython(forwards, backwards)]
