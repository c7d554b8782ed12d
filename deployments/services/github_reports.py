"""The GitHub outbox: deployment statuses leave the rollout as rows and are delivered by their
own task, paced per token by scheduling.

GitHub asks integrations to send writes for one token one at a time, about a second apart. A
rollout that made those writes itself would wait behind every other rollout's writes, and a
worker slot would sleep through the spacing. Instead the engine calls
:func:`github_report_queue` (a row, in its own short transaction) and carries on; one delivery
chain per token (:class:`~deployments.models.GitHubPacer`) sends the oldest deliverable report,
then schedules its next message ``GITHUB_MUTATION_SPACING_MS`` later. The chain's message
carries the pacer's ``wake_token``, so a duplicate or stale message does nothing, and a report
queued while a message is on its way is picked up by it. A deploy's first report creates its
GitHub deployment (found by key first, so a repeat creates nothing); its reports are sent in
the order they were queued, each only after the ones before it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deployments import rollout, task_names
from deployments.engine.records import audit
from deployments.models import Deploy, Environment, GitHubPacer, GitHubReport
from hotdash import queue
from hotdash.integrations import APIError, RetryableAPIError
from hotdash.integrations.github import github_client
from hotdash.integrations.http import RetryPolicy

log = logging.getLogger(__name__)

Outcome = GitHubReport.Outcome
MAX_ATTEMPTS = 8
# A delivery message that has not run this long after it was due was lost: sent again.
STUCK_AFTER = timedelta(seconds=60)


def pace_key(deploy: Deploy) -> str:
    """Whose token sends the deploy's reports: a GitHub App installation is per account, the
    personal token is one for everything."""
    if settings.GITHUB_APP_ID:
        return f"installation:{deploy.environment.app.github_owner}"
    return "token"


def github_report_queue(
    *, deploy: Deploy, state: str, description: str, ref: str = "", environment_url: str = ""
) -> bool:
    """Queue the deploy's GitHub deployment status ``state`` (at most once per state). The
    first report names the ``ref`` the deployment is created for; a later one needs an earlier
    report to follow. False when there is nothing to report on (no first report)."""
    first = deploy.github_reports.order_by("id").first()
    if first is None and not ref:
        return False
    key = pace_key(deploy)
    with transaction.atomic():
        GitHubReport.objects.get_or_create(
            deploy=deploy,
            state=state,
            defaults={
                "pace_key": key,
                "ref": ref or first.ref,
                "description": description[:140],
                "environment_url": environment_url,
            },
        )
        _wake(key, due=timezone.now())
    return True


def _wake(key: str, *, due, reset: bool = False) -> None:
    """Make sure one delivery message for ``key`` is on its way (inside a transaction)."""
    pacer, _ = GitHubPacer.objects.select_for_update().get_or_create(key=key)
    if pacer.wake_token and not reset:
        return  # the message on its way picks up whatever is pending when it runs
    due = max(due, pacer.next_at or due)
    pacer.wake_token = uuid.uuid4().hex
    pacer.wake_due_at = due
    pacer.save(update_fields=["wake_token", "wake_due_at"])
    countdown = max(0.0, (due - timezone.now()).total_seconds())
    token = pacer.wake_token
    transaction.on_commit(
        lambda: queue.send(task_names.GITHUB_REPORTS_DELIVER, key, token, countdown=countdown)
    )


def _next_report(key: str) -> GitHubReport | None:
    """The oldest pending report of ``key``: a deploy's reports go in the order they were
    queued, and one that must be retried holds back the token's later writes (GitHub limits
    the token, not the deployment)."""
    return GitHubReport.objects.filter(pace_key=key, outcome=Outcome.PENDING).order_by("id").first()


def github_reports_deliver(*, key: str, token: str) -> None:
    """Send the next report of ``key`` if this message is the chain's and its time has come,
    then schedule the chain's next message."""
    now = timezone.now()
    with transaction.atomic():
        pacer = GitHubPacer.objects.select_for_update().filter(key=key).first()
        if pacer is None or pacer.wake_token != token:
            return  # a duplicate, or a message the sweep replaced
        if pacer.next_at and pacer.next_at > now:
            _wake(key, due=pacer.next_at, reset=True)  # early (a clock step): try again then
            return
        report = _next_report(key)
        if report is None:
            pacer.wake_token = ""
            pacer.save(update_fields=["wake_token"])
            return
        # Nobody else sends for this token until this send ends (or its deadline passes).
        pacer.next_at = now + timedelta(seconds=2 * settings.HTTP_TIMEOUT_SECONDS)
        pacer.save(update_fields=["next_at"])
    delay = _send(report)
    with transaction.atomic():
        pacer = GitHubPacer.objects.select_for_update().get(key=key)
        pacer.next_at = timezone.now() + timedelta(
            seconds=max(settings.GITHUB_MUTATION_SPACING_MS / 1000, delay)
        )
        pacer.save(update_fields=["next_at"])
        if GitHubReport.objects.filter(pace_key=key, outcome=Outcome.PENDING).exists():
            _wake(key, due=pacer.next_at, reset=True)
        else:
            pacer.wake_token = ""
            pacer.save(update_fields=["wake_token"])


def _send(report: GitHubReport) -> float:
    """Make one GitHub write for ``report`` — the deploy's GitHub deployment if it has none
    yet (the report stays pending for the next turn), else the status — and record the
    outcome; the seconds GitHub asked to wait before the next write (0 if none)."""
    deploy = Deploy.objects.select_related("environment__app").get(pk=report.deploy_id)
    env = deploy.environment
    app = env.app
    github = github_client(
        app.github_owner,
        app.github_repo,
        mutation_spacing=0.0,  # paced here, by scheduling
        retry=RetryPolicy(attempts=1),  # a retry is a later message, never a sleep
    )
    try:
        with github.api:
            if deploy.github_deployment_id is None:
                key = str(deploy.pk)
                created = github.find_deployment(ref=report.ref, environment=env.name, key=key)
                if created is None:
                    created = github.create_deployment(
                        ref=report.ref,
                        environment=env.name,
                        key=key,
                        description=f"HotDash deploy #{deploy.pk}: {deploy.image_ref}",
                        required_contexts=[],
                        transient=env.kind == Environment.Kind.PREVIEW,
                        production=env.kind == Environment.Kind.PRODUCTION,
                    )
                with transaction.atomic():
                    Deploy.objects.filter(pk=deploy.pk).update(github_deployment_id=created.id)
                    deploy.github_deployment_id = created.id
                    audit(
                        deploy=deploy,
                        actor="worker",
                        verb="deploy.github_deployment_created",
                        data={"id": created.id, "ref": report.ref},
                    )
                return 0.0
            github.create_deployment_status(
                deploy.github_deployment_id,
                report.state,
                description=report.description,
                environment_url=report.environment_url or None,
            )
    except APIError as error:
        report.attempts += 1
        report.error = str(error)[:1000]
        final = not isinstance(error, RetryableAPIError) or report.attempts >= MAX_ATTEMPTS
        if final:
            report.outcome = Outcome.FAILED
            log.warning(
                "deploy %s: GitHub status %s not recorded: %s", deploy.pk, report.state, error
            )
        report.save(update_fields=["attempts", "error", "outcome"])
        if final:
            return 0.0
        return rollout.retry_delay(report.attempts, retry_after=error.retry_after)
    report.outcome = Outcome.SENT
    report.sent_at = timezone.now()
    report.attempts += 1
    report.save(update_fields=["outcome", "sent_at", "attempts"])
    return 0.0


def github_reports_resend_stuck(*, now=None) -> int:
    """Send a new delivery message for every chain whose message is overdue (lost with a
    worker or a broker); the number resent."""
    now = now or timezone.now()
    resent = 0
    idle = Q(next_at__isnull=True) | Q(next_at__lt=now)  # not in the middle of a send
    overdue = GitHubPacer.objects.filter(idle, wake_due_at__lt=now - STUCK_AFTER)
    for key in overdue.exclude(wake_token="").values_list("key", flat=True):
        with transaction.atomic():
            _wake(key, due=now, reset=True)
        resent += 1
    return resent
