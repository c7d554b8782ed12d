"""hotdash.queries.ConstantIn: a filter on code-defined values written into the statement, so
that PostgreSQL can run the prepared statement on its generic plan with a partial index."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from deployments.models import App, Deploy, Environment
from deployments.selectors.activity import environment_activity
from hotdash.queries import ConstantIn
from tests.foundation.settings_probe import run_probe

pytestmark = pytest.mark.django_db


def test_it_keeps_the_rows_whose_value_is_one_of_the_constants():
    kept = ContentType.objects.filter(ConstantIn(F("app_label"), ("auth", "sessions")))
    expected = ContentType.objects.filter(app_label__in=("auth", "sessions"))
    assert set(kept) == set(expected)
    assert {content_type.app_label for content_type in kept} == {"auth", "sessions"}


def test_it_follows_relations_and_combines_with_other_conditions():
    permissions = Permission.objects.filter(
        Q(ConstantIn(F("content_type__app_label"), ("auth",))) & Q(codename__startswith="add_")
    )
    assert permissions.exists()
    assert {p.content_type.app_label for p in permissions} == {"auth"}
    assert all(p.codename.startswith("add_") for p in permissions)


def test_the_values_are_written_into_the_statement_not_bound():
    sql, params = (
        ContentType.objects.filter(ConstantIn(F("app_label"), Deploy.ACTIVE_STATES))
        .query.get_compiler("default")
        .as_sql()
    )
    assert "IN ('running', 'verifying')" in sql
    assert tuple(params) == ()


@pytest.mark.parametrize(
    "values", [(), ("auth'); DROP TABLE auth_user; --",), ("Auth",), ("a b",), ("",), (1,)]
)
def test_anything_but_lower_case_words_is_refused(values):
    with pytest.raises(ValueError, match="lower-case words"):
        ConstantIn(F("app_label"), values)


# In a new process, as production connects (parameters bound server-side, statements prepared
# from their 5th run): the activity query of an environment with an open deploy, run often
# enough for PostgreSQL to choose between its generic and its custom plans.
HISTORY = 3000
ACTIVITY_PROBE = """
import json
import django
django.setup()
from django.db import connection
from deployments.selectors.activity import environment_activity

for _ in range(15):
    environment_activity(environment_ids=[ENVIRONMENT_ID])
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
        " WHERE statement LIKE 'SELECT %%deployments_deploy%%'"
    )
    print(json.dumps(cursor.fetchall()))
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgresql_runs_the_activity_queries_on_their_generic_plans():
    """With the states bound, the partial indexes (deploy_open_state_idx,
    deploy_env_last_ran_idx) fit no generic plan and every run was planned anew."""
    app = App.objects.create(name="plans", github_owner="acme", github_repo="plans", fly_org="acme")
    environment = Environment.objects.create(
        app=app, name="production", kind=Environment.Kind.PRODUCTION, fly_app_name="plans-prod"
    )
    now = timezone.now()
    # A history, as the partial indexes are made for: few open deploys among many finished.
    Deploy.objects.bulk_create(
        Deploy(
            environment=environment,
            image_ref="registry.fly.io/plans:1",
            reason="test",
            state=Deploy.State.QUEUED if n == HISTORY else Deploy.State.SUCCEEDED,
            requested_by_system="release",
            started_at=None if n == HISTORY else now,
            finished_at=None if n == HISTORY else now,
        )
        for n in range(HISTORY + 1)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE deployments_deploy")
    activity = environment_activity(environment_ids=[environment.pk])[environment.pk]
    assert [d.state for d in activity.last] == [Deploy.State.SUCCEEDED]
    assert [d.state for d in activity.queued] == [Deploy.State.QUEUED]
    statements = run_probe(
        ACTIVITY_PROBE.replace("ENVIRONMENT_ID", str(environment.pk)),
        DATABASE_PREPARED_STATEMENTS=None,
    )
    assert len(statements) == 2, statements
    for statement, generic_plans, custom_plans in statements:
        assert generic_plans > 0, (statement, generic_plans, custom_plans)
