"""The GitHub outbox: a rollout queues its deployment statuses and carries on; one delivery
chain per token sends them in order, paced by scheduling (never by sleeping), honouring
GitHub's rate limits, and a lost or duplicate message neither loses nor repeats a write."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise

import pytest
from django.utils import timezone

from deployments.models import Deploy, GitHubPacer, GitHubReport
from deployments.services.github_reports import (
    MAX_ATTEMPTS,
    github_report_queue,
    github_reports_deliver,
    github_reports_resend_stuck,
)
from tests.engine.conftest import deliver_github_reports, fast_health, make_deploy

STATUSES = r"/deployments/\d+/statuses$"
CREATE = r"/repos/hotdash-demo/hot-dash/deployments$"


def github_writes(sandbox) -> list[tuple[str, float]]:
    return [(c.path, c.at) for c in sandbox.calls("POST", service="github")]


def status_posts(sandbox) -> list:
    return [c for c in sandbox.calls("POST", service="github") if re.search(STATUSES, c.path)]


def due_in(key: str = "token") -> float:
    pacer = GitHubPacer.objects.get(key=key)
    return (pacer.wake_due_at - timezone.now()).total_seconds()


def deliver_next(driver, key: str = "token") -> None:
    """Wait until the chain's next message is due, then run it."""
    driver.tick(max(0.0, due_in(key)))
    pacer = GitHubPacer.objects.get(key=key)
    github_reports_deliver(key=key, token=pacer.wake_token)


@pytest.fixture
def two_deploys(demo, production, release_130, requester, driver):
    """Deploys to production and staging, each with its in_progress then success queued."""
    staging = fast_health(demo.environments.get(name="staging"))
    deploys = [
        make_deploy(env, release_130, requested_by=requester, queue=False)
        for env in (production, staging)
    ]
    for state in ("in_progress", "success"):
        for deploy in deploys:
            assert github_report_queue(
                deploy=deploy, state=state, description=state, ref=release_130.tag
            )
    return deploys


def test_a_rollout_does_not_wait_for_github(production, release_130, requester, sandbox, driver):
    sandbox.add_fault("status", service="github", method="POST", path=CREATE)  # GitHub is down

    deploy = driver.run(make_deploy(production, release_130, requested_by=requester))

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert deploy.attempts == 1
    reports = list(deploy.github_reports.order_by("id").values_list("state", "outcome"))
    assert reports == [("in_progress", "pending"), ("success", "pending")]
    assert status_posts(sandbox) == []


def test_reports_go_in_order_one_per_second_per_token(two_deploys, sandbox, driver, settings):
    settings.GITHUB_MUTATION_SPACING_MS = 1000
    production, staging = two_deploys

    for _ in range(6):  # 2 deployments + 4 statuses, one write per message
        deliver_next(driver)

    assert not GitHubPacer.objects.get(key="token").wake_token  # the chain ended
    assert set(GitHubReport.objects.values_list("outcome", flat=True)) == {"sent"}
    for deploy in two_deploys:
        deploy.refresh_from_db()
        statuses = sandbox.world.github.deployment_statuses[deploy.github_deployment_id]
        assert [s["state"] for s in statuses] == ["in_progress", "success"]
    writes = [at for _, at in github_writes(sandbox)]
    assert len(writes) == 6
    assert all(later - earlier >= 1.0 for earlier, later in pairwise(writes))


def test_a_message_that_comes_early_sends_nothing_and_comes_back_when_due(
    two_deploys, sandbox, driver, settings
):
    settings.GITHUB_MUTATION_SPACING_MS = 1000
    deliver_next(driver)
    sent = len(github_writes(sandbox))
    token = GitHubPacer.objects.get(key="token").wake_token

    github_reports_deliver(key="token", token=token)  # 0 s after the previous write

    assert len(github_writes(sandbox)) == sent
    assert due_in() == pytest.approx(1.0)
    deliver_next(driver)
    assert len(github_writes(sandbox)) > sent


def test_a_duplicate_or_stale_message_does_nothing(two_deploys, sandbox, driver):
    token = GitHubPacer.objects.get(key="token").wake_token
    github_reports_deliver(key="token", token=token)
    sent = len(github_writes(sandbox))

    github_reports_deliver(key="token", token=token)  # delivered twice by the broker

    assert len(github_writes(sandbox)) == sent


def test_a_retry_after_holds_back_the_token_and_keeps_the_order(two_deploys, sandbox, driver):
    sandbox.add_fault(
        "rate_limit", service="github", method="POST", path=STATUSES, retry_after=7, times=1
    )
    deliver_next(driver)  # production's deployment is created
    deliver_next(driver)  # its first status is limited

    assert due_in() == pytest.approx(7.0)
    first = GitHubReport.objects.order_by("id").first()
    assert (first.outcome, first.attempts) == ("pending", 1)
    assert "rate-limited" in first.error
    deliver_github_reports()  # nothing is due yet
    assert len(status_posts(sandbox)) == 1

    for _ in range(5):  # the status again, staging's deployment, three statuses
        deliver_next(driver)

    production = two_deploys[0]
    production.refresh_from_db()
    statuses = sandbox.world.github.deployment_statuses[production.github_deployment_id]
    assert [s["state"] for s in statuses] == ["in_progress", "success"]
    limited, retried = status_posts(sandbox)[:2]
    assert retried.at - limited.at >= 7


def test_a_report_github_keeps_refusing_fails_saying_why(
    production, release_130, requester, sandbox, driver
):
    sandbox.add_fault("status", service="github", method="POST", path=CREATE, status=503)
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    github_report_queue(deploy=deploy, state="in_progress", description="x", ref="v1.3.0")

    for _ in range(MAX_ATTEMPTS):
        deliver_next(driver)  # the create, refused each time

    report = deploy.github_reports.get()
    assert (report.outcome, report.attempts) == ("failed", MAX_ATTEMPTS)
    assert "503" in report.error
    assert not GitHubPacer.objects.get(key="token").wake_token


def test_a_later_state_needs_a_first_report(production, release_130, requester):
    deploy = make_deploy(production, release_130, requested_by=requester, queue=False)
    assert not github_report_queue(deploy=deploy, state="failure", description="no deployment")
    assert not GitHubReport.objects.exists()


def test_a_lost_delivery_message_is_sent_again_by_the_sweep(two_deploys, sandbox, driver):
    lost = GitHubPacer.objects.get(key="token").wake_token
    assert github_reports_resend_stuck() == 0  # not overdue yet

    driver.tick(61)
    assert github_reports_resend_stuck(now=timezone.now()) == 1

    github_reports_deliver(key="token", token=lost)  # the lost one, if it ever comes
    assert github_writes(sandbox) == []
    deliver_next(driver)
    assert len(github_writes(sandbox)) == 1  # production's deployment
    assert GitHubPacer.objects.get(key="token").wake_due_at > timezone.now() - timedelta(1)
