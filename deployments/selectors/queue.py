"""What the queue means for a deploy, before it happens: the deploys it waits behind, what
will be live when it starts, the requests its approval supersedes. The order itself is
``deployments.queue_order``, the one the engine claims by."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from approvals import policy
from deployments.models import Deploy, Environment, Release
from deployments.queue_order import queue_sort_key, queued_before


def queue_ahead(deploy: Deploy) -> list[Deploy]:
    """The queued deploys ``deploy`` waits behind, first in line first."""
    ahead = (
        Deploy.objects.filter(environment_id=deploy.environment_id, state=Deploy.State.QUEUED)
        .exclude(pk=deploy.pk)
        .filter(queued_before(deploy))
        .select_related("release")
    )
    return sorted(ahead, key=queue_sort_key)


def queue_position(*, deploy: Deploy) -> int | None:
    """1 when next in line for its environment; None unless queued."""
    if deploy.state != Deploy.State.QUEUED:
        return None
    return len(queue_ahead(deploy)) + 1


def target_label(deploy: Deploy) -> str:
    return deploy.release.tag if deploy.release else deploy.image_ref


@dataclass(frozen=True)
class Outlook:
    """What a deploy of ``release`` to ``environment`` would meet, said before it happens."""

    environment: Environment
    release: Release | None
    live_label: str  # what is live now
    running: Deploy | None  # the deploy running there now
    ahead: list[Deploy] = field(default_factory=list)  # queued before it, first in line first
    supersedes: list[Deploy] = field(default_factory=list)  # pending requests it would replace
    replaced: list[Deploy] = field(default_factory=list)  # the requests it did replace
    already_started: bool = False

    @property
    def behind(self) -> Deploy | None:
        """The deploy it would start after: the last one ahead of it, or the one running."""
        return self.ahead[-1] if self.ahead else self.running

    @property
    def before_it(self) -> int:
        """How many deploys run before it: the one running and those queued ahead."""
        return len(self.ahead) + (self.running is not None)

    @property
    def live_when_it_starts(self) -> str:
        """What will be live when it starts, if the deploys before it succeed."""
        return target_label(self.behind) if self.behind else self.live_label

    @property
    def no_op(self) -> bool:
        """The release is what is live (same release, or the same image): nothing would change."""
        if self.release is None or self.already_started:
            return False
        if self.behind is not None:
            return self.behind.release_id == self.release.pk
        live = self.environment
        return self.release.pk == live.current_release_id or bool(
            self.release.image_ref and self.release.image_ref == live.current_image_ref
        )

    @property
    def no_op_message(self) -> str:
        if self.behind is not None:
            return (
                f"{self.release.tag} will already be live on {self.environment.name} when it "
                f"starts (deploy #{self.behind.pk}): this deploy changes nothing."
            )
        return (
            f"{self.release.tag} is already live on {self.environment.name}: "
            "this deploy changes nothing."
        )


def deploy_outlook(
    *,
    environment: Environment,
    release: Release | None,
    kind: str = Deploy.Kind.DEPLOY,
    deploy: Deploy | None = None,
) -> Outlook:
    """For a new request (``deploy`` None) or an existing one not started yet: the deploy it
    would wait behind, what will be live when it starts, the pending requests its approval
    would supersede, the ones it did supersede, and whether it would change nothing. Two
    queries."""
    live_label = (
        environment.current_release.tag
        if environment.current_release
        else environment.current_image_ref or "nothing"
    )
    started = deploy is not None and (deploy.started_at is not None or deploy.is_terminal)
    around = Q(superseded_by=deploy) if deploy is not None else Q(pk__in=[])
    if not started:
        around |= Q(
            environment=environment,
            state__in=(*Deploy.ACTIVE_STATES, Deploy.State.AWAITING_APPROVAL),
        )
    others = Deploy.objects.filter(around).select_related("release").order_by("created_at", "id")
    if deploy is not None:
        others = others.exclude(pk=deploy.pk)
    others = list(others)
    replaced = [d for d in others if deploy is not None and d.superseded_by_id == deploy.pk]
    if started:
        return Outlook(
            environment, release, live_label, running=None, replaced=replaced, already_started=True
        )
    running = next((d for d in others if d.state in Deploy.ACTIVE_STATES), None)
    # Approving a request ends the older requests for its environment still awaiting approval.
    waiting = [d for d in others if d.state == Deploy.State.AWAITING_APPROVAL]
    if deploy is not None:
        # Its approval request was opened with it, so the older requests are the older deploys.
        waiting = [d for d in waiting if d.pk < deploy.pk]
        if deploy.state != Deploy.State.AWAITING_APPROVAL:
            waiting = []
    elif not policy.approvals_needed(environment, fast_path=False):
        waiting = []  # it would queue at once, approving nothing
    candidate = deploy or Deploy(environment=environment, kind=kind, state=Deploy.State.REQUESTED)
    return Outlook(
        environment,
        release,
        live_label,
        running=running,
        ahead=queue_ahead(candidate),
        supersedes=waiting,
        replaced=replaced,
    )
