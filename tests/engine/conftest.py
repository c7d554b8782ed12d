"""Engine fixtures: a deploy of the demo world, and a driver that runs its steps in-process
against the frozen sandbox, moving the sandbox clock and Django's clock together."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.db.models import Q
from django.test import TestCase
from django.utils import timezone

from deployments import task_names
from deployments.models import Deploy, Environment, GitHubPacer, Release
from deployments.services.deploys import deploy_execute, deploy_queue
from deployments.services.github_reports import github_reports_deliver
from deployments.services.plans import deploy_plan_create
from hotdash.integrations import fly_client
from tests.fixtures.messages import record_messages


def fast_health(environment: Environment) -> Environment:
    """Small health timings so rollouts finish in a few virtual seconds."""
    environment.health_http_grace_seconds = environment.health_tcp_grace_seconds = 1
    environment.health_http_timeout_seconds = environment.health_tcp_timeout_seconds = 2
    environment.health_http_interval_seconds = environment.health_tcp_interval_seconds = 1
    environment.health_attempts = 3
    environment.verification_window_seconds = 4
    environment.save()
    return environment


def make_deploy(
    environment: Environment, release: Release, *, requested_by, queue: bool = True
) -> Deploy:
    """A deploy of ``release`` planned over the environment's Fly machines (as deploy_request
    plans it), queued unless ``queue`` is False."""
    deploy = Deploy.objects.create(
        environment=environment,
        release=release,
        requested_by=requested_by,
        reason="ship it",
        image_ref=release.image_ref,
        image_digest=release.image_digest,
        artifact_sha256=release.artifact_sha256,
        commit_sha=release.commit_sha,
        previous_release=environment.current_release,
        previous_image_ref=environment.current_image_ref,
    )
    with fly_client() as fly:
        machine_ids = [m.id for m in fly.list_machines(environment.fly_app_name)]
    deploy_plan_create(
        deploy=deploy,
        target_name=release.tag,
        machine_ids=machine_ids,
        verify_data={"image_ref": release.image_ref},
    )
    if queue:
        with TestCase.captureOnCommitCallbacks(execute=True):  # the run message, as on commit
            deploy_queue(deploy=deploy, actor=requested_by)
    return deploy


def deliver_github_reports(limit: int = 50) -> int:
    """Run the GitHub outbox's delivery messages that are due now, as its chain would (tests
    space GitHub writes 0 s apart); the number run."""
    for run in range(limit):
        due = Q(next_at__isnull=True) | Q(next_at__lte=timezone.now())
        pacer = GitHubPacer.objects.exclude(wake_token="").filter(due).first()
        if pacer is None:
            return run
        github_reports_deliver(key=pacer.key, token=pacer.wake_token)
    raise AssertionError(f"GitHub reports still pending after {limit} deliveries")


def rollback_to_111(production: Environment, user) -> Deploy:
    """A person's rollback of the demo's production from v1.2.0 to v1.1.1: queued at once on
    the fast path for an approver, awaiting approval for a deployer."""
    from deployments.services.rollbacks import rollback_request

    return rollback_request(
        environment=production,
        release=production.app.releases.get(version="1.1.1"),
        requested_by=user,
        reason="5xx spike after 1.2.0",
        confirmation="hot-dash",
    )


def pending_token(deploy: Deploy) -> str:
    deploy.refresh_from_db()
    return deploy.lease_owner.removeprefix("next:")


@pytest.fixture(autouse=True)
def run_messages(request, monkeypatch) -> list[list]:
    """The args of every deploy_run message published, kept here instead of in the broker,
    where a later test's real worker would find them. Tests with committed data (and real
    workers) publish for real."""
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        return []
    return record_messages(monkeypatch, task_names.DEPLOY_RUN)


@dataclass
class Driver:
    sandbox: object
    traveller: object
    published: list[list] = field(default_factory=list)  # run messages' args, if recorded
    steps: int = 0

    def message(self, deploy: Deploy) -> list:
        """The args of the run message the worker would now receive for ``deploy``: the last
        one published with its pending token (a bare one if none was)."""
        token = pending_token(deploy)
        sent = [args for args in self.published if args[:2] == [deploy.pk, token]]
        return sent[-1] if sent else [deploy.pk, token]

    def tick(self, seconds: float) -> None:
        """Let ``seconds`` pass for the sandbox's machines and for the engine's deadlines."""
        self.sandbox.advance(seconds)
        self.traveller.shift(seconds)

    def run_once(self, deploy: Deploy, worker: str = "test-worker"):
        self.steps += 1
        deploy_id, token, *rest = self.message(deploy)
        following = deploy_execute(
            deploy_id=deploy_id, token=token, worker=worker, fly_app=rest[0] if rest else ""
        )
        deliver_github_reports()  # the outbox's own messages, between the run's
        return following

    def run(
        self, deploy: Deploy, *, until=None, limit: int = 200, worker: str = "test-worker"
    ) -> Deploy:
        """Run the deploy like the task chain would, waiting each countdown, until it ends
        (or ``until(deploy)`` holds)."""
        for _ in range(limit):
            following = self.run_once(deploy, worker)
            deploy.refresh_from_db()
            if following is None or (until and until(deploy)):
                return deploy
            self.tick(max(following.countdown, 0.5))
        raise AssertionError(f"deploy #{deploy.pk} still {deploy.state} after {limit} runs")


@pytest.fixture
def production(demo, sandbox):
    return fast_health(demo.environments.get(name="production"))


@pytest.fixture
def release_130(demo):
    return demo.releases.get(version="1.3.0")


@pytest.fixture
def driver(sandbox, time_machine, settings, run_messages):
    settings.DEPLOY_POLL_SECONDS = 1
    settings.DEPLOY_QUEUE_POLL_SECONDS = 1
    time_machine.move_to(sandbox.clock.now(), tick=False)
    return Driver(sandbox=sandbox, traveller=time_machine, published=run_messages)
