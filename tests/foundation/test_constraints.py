"""Constraints that live in the database, not only in Python."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from deployments.models import Deploy


def active_deploy(environment, release, **fields):
    values = {"state": Deploy.State.RUNNING, "requested_by_system": "system", "reason": "test"}
    return Deploy(environment=environment, release=release, **{**values, **fields})


def test_second_active_deploy_is_rejected(demo):
    production = demo.environments.get(name="production")
    release = demo.releases.get(version="1.3.0")
    active_deploy(production, release).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        active_deploy(production, release, state=Deploy.State.VERIFYING).save()
    assert (
        Deploy.objects.filter(environment=production, state__in=Deploy.ACTIVE_STATES).count() == 1
    )


def test_active_deploys_in_different_environments_are_fine(demo):
    release = demo.releases.get(version="1.3.0")
    for environment in demo.environments.all():
        active_deploy(environment, release).save()
    assert Deploy.objects.filter(state=Deploy.State.RUNNING).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_transactions_cannot_both_activate(demo):
    production = demo.environments.get(name="production")
    release = demo.releases.get(version="1.3.0")
    first_inserted = threading.Event()
    let_first_commit = threading.Event()
    outcomes: dict[str, str] = {}

    def attempt(name: str) -> None:
        try:
            with transaction.atomic():
                if name == "second":
                    first_inserted.wait(timeout=10)
                active_deploy(production, release).save()  # the second blocks here on the index
                if name == "first":
                    first_inserted.set()
                    let_first_commit.wait(timeout=10)
        except IntegrityError:
            outcomes[name] = "rejected"
        else:
            outcomes[name] = "committed"
        finally:
            connection.close()

    threads = {name: threading.Thread(target=attempt, args=(name,)) for name in ("first", "second")}
    for thread in threads.values():
        thread.start()
    assert first_inserted.wait(timeout=10)
    threads["second"].join(timeout=0.5)
    assert threads["second"].is_alive()  # waiting on the first transaction's index entry
    let_first_commit.set()
    for thread in threads.values():
        thread.join(timeout=30)
    assert outcomes == {"first": "committed", "second": "rejected"}
    assert Deploy.objects.filter(environment=production, state=Deploy.State.RUNNING).count() == 1


def test_one_decision_per_user_per_request(demo, approver):
    from datetime import timedelta

    from django.utils import timezone

    from approvals.models import ApprovalRequest, Decision

    deploy = Deploy.objects.create(
        environment=demo.environments.get(name="production"),
        release=demo.releases.get(version="1.3.0"),
        state=Deploy.State.AWAITING_APPROVAL,
        requested_by_system="system",
        reason="test",
    )
    request = ApprovalRequest.objects.create(
        deploy=deploy, expires_at=timezone.now() + timedelta(hours=1)
    )
    Decision.objects.create(request=request, user=approver, verdict=Decision.Verdict.APPROVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        Decision.objects.create(request=request, user=approver, verdict=Decision.Verdict.REJECT)


def test_unique_version_per_app(demo):
    from deployments.models import Release

    with pytest.raises(IntegrityError), transaction.atomic():
        Release.objects.create(app=demo, version="1.2.0", tag="v1.2.0")
