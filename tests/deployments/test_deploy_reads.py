"""What a deploy's page reads: the deploy with its always-set relations in one query, and only
those of its rarely-set relations (lock holder, previous release, overriding admin, rehearsal)
that are set."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments.models import Deploy, Environment
from deployments.selectors.deploys import deploy_get

pytestmark = pytest.mark.django_db


@pytest.fixture
def deploy(demo) -> Deploy:
    deploy = Deploy.objects.filter(environment__name="production").latest("id")
    Deploy.objects.filter(pk=deploy.pk).update(
        previous_release=None, overridden_by=None, rehearsal=None
    )
    Environment.objects.filter(pk=deploy.environment_id).update(locked_by=None)
    return deploy


def read_everything(deploy: Deploy) -> tuple:
    return (
        deploy.environment.app.name,
        deploy.environment.current_release,
        deploy.environment.locked_by,
        deploy.release,
        deploy.previous_release,
        deploy.requested_by,
        deploy.overridden_by,
        deploy.rehearsal and deploy.rehearsal.environment.name,
        getattr(deploy, "approval_request", None),
    )


def test_a_deploy_without_its_rare_relations_is_one_query(deploy, django_assert_num_queries):
    with django_assert_num_queries(1):
        read_everything(deploy_get(pk=deploy.pk))


def test_the_rare_relations_that_are_set_are_read_with_it_and_none_later(
    deploy, admin_user, django_assert_num_queries
):
    staging = Deploy.objects.filter(environment__name="staging").latest("id")
    Deploy.objects.filter(pk=deploy.pk).update(
        previous_release=staging.release, overridden_by=admin_user, rehearsal=staging
    )
    Environment.objects.filter(pk=deploy.environment_id).update(
        locked_by=admin_user, locked_at=timezone.now()
    )

    # The deploy; the lock holder; the previous release; the admin; the rehearsal and its
    # environment.
    with django_assert_num_queries(6):
        read = read_everything(deploy_get(pk=deploy.pk))

    assert read[2] == admin_user and read[4] == staging.release and read[6] == admin_user
    assert read[7] == "staging"


def test_the_rollbacks_of_a_deploy_are_one_query_whatever_their_number(
    client, deploy, viewer, django_assert_num_queries
):
    Deploy.objects.filter(pk=deploy.pk).update(state=Deploy.State.FAILED, error="5xx")
    staging = Deploy.objects.filter(environment__name="staging").latest("id")
    url = reverse("deployments:deploy-detail", args=[deploy.pk])
    client.force_login(viewer)

    def roll_back(state: str, summary: str) -> Deploy:
        return Deploy.objects.create(
            environment=deploy.environment,
            release=staging.release,
            kind=Deploy.Kind.ROLLBACK,
            state=state,
            health_summary=summary,
            requested_by=viewer,
            reason="incident",
            rollback_of=deploy,
        )

    first = roll_back(Deploy.State.FAILED, "still 5xx")
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    second = roll_back(Deploy.State.SUCCEEDED, "healthy again")
    with django_assert_num_queries(len(one)):
        html = client.get(url).content.decode()

    for rollback, label, summary in (
        (first, "Failed", "still 5xx"),
        (second, "Succeeded", "healthy again"),
    ):
        item = html[html.index(f'id="rolled-back-by-{rollback.pk}"') :]
        item = item[: item.index("</li>")]
        assert f"to <strong>{staging.release.tag}</strong>" in item
        assert f">{label}</span>" in item and summary in item
