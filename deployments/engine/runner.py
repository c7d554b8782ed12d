"""The runner: drives a claimed deploy's steps until one must wait or the deploy ends, and
ends it (succeeded, failed with an automatic rollback where one applies, or superseded).

Workers never sleep waiting for Fly: a step that must wait raises ``Wait``, and the runner hands
the lease back as a fresh ``next:`` token for the task to re-send itself with a countdown. A
lost lease (``Fenced``, wherever it is raised) ends the run quietly.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deployments import rollout
from deployments.engine import auto_rollback, steps
from deployments.engine.context import Progress, RunContext, StepFailed, Wait
from deployments.engine.lease import Fenced, Next, end, next_token
from deployments.engine.records import audit, log_line
from deployments.models import Deploy, DeployLog, DeployStep, Environment
from hotdash.integrations import PermanentAPIError, RetryableAPIError

log = logging.getLogger(__name__)

State = Deploy.State
StepState = DeployStep.State
DEADLINE_EXCEEDED = "deadline exceeded"


class Runner(RunContext):
    def yield_for(self, seconds: float) -> Next:
        with transaction.atomic():
            locked = Deploy.objects.select_for_update().get(pk=self.deploy.pk)
            if locked.lease_owner != self.run:
                raise Fenced
            token = next_token(locked, due_in=seconds, now=timezone.now())
            locked.save(update_fields=["lease_owner", "lease_expires_at"])
        return Next(deploy_id=self.deploy.pk, token=token, countdown=seconds)

    # --- the loop ------------------------------------------------------------------------

    def drive(self, *, waiting: str = "") -> Next | None:
        """Run until a step waits or the deploy ends; a lost lease (Fenced, wherever it is
        raised, also while handling another outcome) ends this run quietly."""
        try:
            return self.advance(waiting)
        except Fenced:
            log.info("deploy %s: lease lost; another worker carries on", self.deploy.pk)
            return None

    def advance(self, waiting: str) -> Next | None:
        try:
            if self.deploy.attempts > settings.DEPLOY_MAX_ATTEMPTS:
                raise StepFailed(
                    f"Gave up after {self.deploy.attempts - 1} attempts (worker lost or "
                    f"upstream errors; limit DEPLOY_MAX_ATTEMPTS={settings.DEPLOY_MAX_ATTEMPTS})."
                )
            if self.deploy.state == State.QUEUED:
                self.note_once(waiting)
                raise Wait(settings.DEPLOY_QUEUE_POLL_SECONDS)
            while True:
                step = self.deploy.steps.exclude(
                    state__in=(StepState.DONE, StepState.SKIPPED)
                ).first()
                if step is None:
                    self.succeed()
                    return None
                self.check_deadline()
                self.check_stop(step)
                if self.deploy.is_terminal:
                    return None
                self.step = step
                steps.STEPS[step.kind](self, step)
        except Wait as wait:
            return self.yield_for(wait.seconds)
        except RetryableAPIError as error:
            return self.retry_later(error)
        except PermanentAPIError as error:
            self.fail(self.permanent_failure(error))
            return None
        except StepFailed as failure:
            self.fail(failure)
            return None

    def permanent_failure(self, error: PermanentAPIError) -> StepFailed:
        """A 404 after an abort means whoever aborted also deleted the Fly app (a closed PR's
        preview): the deploy ends aborted with nothing left to roll back, not as a failure."""
        aborted = Deploy.objects.filter(pk=self.deploy.pk, abort_requested_at__isnull=False)
        if error.status == 404 and aborted.exists():
            return StepFailed(
                f"Aborted on request; the Fly app or machine is already gone ({error}).",
                rollback=False,
                verb="deploy.aborted",
            )
        return StepFailed(f"{error}")

    def retry_later(self, error: RetryableAPIError) -> Next | None:
        attempts = self.deploy.attempts + 1
        if attempts > settings.DEPLOY_MAX_ATTEMPTS:
            self.fail(StepFailed(f"Gave up after {attempts - 1} attempts: {error}"))
            return None
        delay = rollout.retry_delay(attempts, retry_after=error.retry_after)
        self.commit(
            Progress(
                deploy_fields={"attempts": attempts},
                logs=[(DeployLog.Level.WARNING, f"{error}; retrying in {delay:.0f} s.")],
            )
        )
        return self.yield_for(delay)

    def note_once(self, message: str) -> None:
        """Log a waiting reason once, not at every poll."""
        last = self.deploy.logs.order_by("-id").values_list("message", flat=True).first()
        if last != message:
            self.commit(Progress(logs=[(DeployLog.Level.INFO, message)]))

    # --- stopping: the rollout deadline, or at a batch boundary --------------------------

    def check_deadline(self) -> None:
        """A deploy still running past its environment's rollout deadline is aborted now
        (between two machine updates, never in the middle of one) and what it changed is
        rolled back like after any abort. Automatic rollbacks always run to their end."""
        limit = self.env.rollout_deadline_seconds
        started = self.deploy.started_at
        if limit is None or started is None or self.deploy.kind == Deploy.Kind.AUTO_ROLLBACK:
            return
        now = timezone.now()
        if (now - started).total_seconds() < limit:
            return
        self.commit(
            Progress(
                deploy_fields={"abort_requested_at": now},
                logs=[
                    (
                        DeployLog.Level.WARNING,
                        f"Deadline exceeded: still running {limit} s after it started "
                        f"({self.env}'s rollout deadline); aborting.",
                    )
                ],
                audits=[
                    (
                        "deploy.abort_requested",
                        {"reason": DEADLINE_EXCEEDED, "deadline_seconds": limit},
                    )
                ],
            )
        )
        raise StepFailed(
            f"Aborted: {DEADLINE_EXCEEDED} (still running {limit} s after it started).",
            verb="deploy.aborted",
        )

    def check_stop(self, step: DeployStep) -> None:
        fresh = Deploy.objects.values("abort_requested_at", "superseded_by").get(pk=self.deploy.pk)
        between_batches = step.state == StepState.PENDING or step.kind == DeployStep.Kind.VERIFY
        if not between_batches:
            return
        if fresh["abort_requested_at"]:
            raise StepFailed(
                "Aborted on request: stopped after the current batch.", verb="deploy.aborted"
            )
        if fresh["superseded_by"] and step.kind in (
            DeployStep.Kind.UPDATE_BATCH,
            DeployStep.Kind.VERIFY,
        ):
            self.end_superseded(fresh["superseded_by"])

    def end_superseded(self, by: int) -> None:
        self.report_github("inactive", f"Superseded by deploy #{by}")
        with transaction.atomic():
            locked = Deploy.objects.select_for_update().get(pk=self.deploy.pk)
            if locked.lease_owner != self.run:
                raise Fenced
            end(locked, State.SUPERSEDED, error=f"Superseded by deploy #{by}.")
            log_line(locked, f"Stopped after the current batch: superseded by deploy #{by}.")
            audit(deploy=locked, actor="worker", verb="deploy.superseded", data={"by": by})
        self.deploy = locked

    def report_github(self, state: str, description: str) -> bool:
        """Queue the outcome for the deploy's GitHub deployment (the outbox delivers it, paced,
        off the rollout). True when there is a GitHub deployment to report on."""
        self.fence.check()  # a run that lost its lease reports nothing
        return self.hooks.github_report(deploy=self.deploy, state=state, description=description)

    # --- endings -------------------------------------------------------------------------

    def succeed(self) -> None:
        verify = self.deploy.steps.filter(kind=DeployStep.Kind.VERIFY).first()
        summary = verify.detail if verify else "All machines healthy."
        with transaction.atomic():
            locked = (
                Deploy.objects.select_for_update(of=("self",))
                .select_related("release")
                .get(pk=self.deploy.pk)
            )
            if locked.lease_owner != self.run:
                raise Fenced
            env = Environment.objects.select_for_update().get(pk=self.env.pk)
            if locked.release is not None:
                env.current_release = locked.release
            env.current_image_ref = locked.image_ref
            env.health = Environment.Health.HEALTHY
            env.health_checked_at = timezone.now()
            env.save(
                update_fields=[
                    "current_release",
                    "current_image_ref",
                    "health",
                    "health_checked_at",
                ]
            )
            locked.health_verified = True
            locked.health_summary = summary
            end(locked, State.SUCCEEDED)
            log_line(locked, f"Succeeded: {locked.image_ref} is live on {env}.")
            self.hooks.notify(deploy=locked, event="deploy.succeeded")
            # Last: the audit chain's head stays locked from here until the commit.
            audit(
                deploy=locked,
                actor="worker",
                verb="deploy.succeeded",
                data={"image_ref": locked.image_ref, "machines": self.changed_machines()},
            )
        self.deploy = locked

    def fail(self, failure: StepFailed) -> None:
        deploy = self.deploy
        reported = self.report_github("failure", failure.message[:140])
        changed = self.changed_machines()
        with transaction.atomic():
            locked = Deploy.objects.select_for_update().get(pk=deploy.pk)
            if locked.lease_owner != self.run:
                raise Fenced
            # The step that failed: running, or refused before it recorded its start.
            failed = Q(state=StepState.RUNNING)
            if self.step is not None:
                failed |= Q(pk=self.step.pk, state=StepState.PENDING)
            step = locked.steps.filter(failed).first()
            if step is not None:
                step.state = StepState.FAILED
                step.finished_at = timezone.now()
                step.detail = failure.message
                step.save(update_fields=["state", "finished_at", "detail"])
            if failure.health:
                locked.health_verified = False
                locked.health_summary = failure.message
            end(locked, State.FAILED, error=failure.message)
            if reported:
                locked.steps.filter(kind=DeployStep.Kind.GITHUB_STATUS).update(
                    state=StepState.DONE,
                    finished_at=timezone.now(),
                    detail="GitHub deployment failure queued.",
                )
            log_line(locked, failure.message, DeployLog.Level.ERROR)
            audit(
                deploy=locked,
                actor="worker",
                verb=failure.verb,
                data={"error": failure.message, "changed_machines": changed},
            )
            if changed:
                Environment.objects.filter(pk=self.env.pk).update(
                    health=Environment.Health.FAILING, health_checked_at=timezone.now()
                )
            rollback = None
            if failure.rollback and changed:
                rollback = auto_rollback.start(
                    failed=locked, machines=changed, failure=failure, hooks=self.hooks
                )
            if changed and rollback is None:
                log_line(locked, auto_rollback.no_rollback_reason(locked), DeployLog.Level.ERROR)
            self.hooks.notify(deploy=locked, event="deploy.failed")
            if rollback is not None:
                self.hooks.notify(deploy=rollback, event="deploy.auto_rolled_back")
        self.deploy = locked
