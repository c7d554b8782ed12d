"""What each environment is doing: the last deploy that ran, what runs now, what is queued
behind it and what waits for approval.

"Last deploy" is the last one that ran to its end: a request that was cancelled, rejected or
superseded never changed anything, so it never hides the deploy that did. A failed deploy
followed by its automatic rollback is shown as both, the failure first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import F, OuterRef, Q, Subquery

from deployments.models import Deploy, Environment
from deployments.queue_order import queue_sort_key
from hotdash.queries import ConstantIn

State = Deploy.State

# What a deploy line shows (deployments.templatetags.environment_status), for the deploy and the
# failed deploy an automatic rollback follows: the rest of these wide rows is never read.
_LINE_FIELDS = (
    "environment",
    "kind",
    "state",
    "image_ref",
    "requested_by_system",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "release__tag",
    "requested_by__username",
)
DEPLOY_LINE_FIELDS = (
    *_LINE_FIELDS,
    "rollback_of",
    *(f"rollback_of__{name}" for name in _LINE_FIELDS),
)


@dataclass
class Activity:
    # The last deploy that ran, preceded by the deploy it rolled back when it is an automatic
    # rollback: [failed, rollback] or [deploy] or [].
    last: list[Deploy] = field(default_factory=list)
    running: Deploy | None = None
    queued: list[Deploy] = field(default_factory=list)
    # Requests still waiting for approval (they queue once approved).
    awaiting: list[Deploy] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return self.running is not None or bool(self.queued)


def last_ran_id() -> Subquery:
    """The id of the last deploy that ran to its end in the environment (annotate environments
    with it), found through an index: no scan of the environment's whole history."""
    ran = Deploy.objects.filter(
        ConstantIn(F("state"), Deploy.TERMINAL_STATES),
        environment=OuterRef("pk"),
        started_at__isnull=False,
    ).order_by(F("finished_at").desc(nulls_last=True), "-id")
    return Subquery(ran.values("id")[:1])


def environment_activity(*, environment_ids: list[int]) -> dict[int, Activity]:
    """The activity of each environment in ``environment_ids``. Two queries whatever their
    number."""
    if not environment_ids:
        return {}
    return activity_of(
        dict(
            Environment.objects.filter(pk__in=environment_ids)
            .order_by()  # a dict: the default order would join the apps only to sort
            .annotate(last_ran_id=last_ran_id())
            .values_list("pk", "last_ran_id")
        )
    )


def activity_of(last_ran_ids: dict[int, int | None]) -> dict[int, Activity]:
    """The activity of each environment of ``last_ran_ids``, which maps it to its
    ``last_ran_id()``. One query whatever their number."""
    if not last_ran_ids:
        return {}
    deploys = Deploy.objects.filter(
        Q(pk__in=[pk for pk in last_ran_ids.values() if pk])
        | Q(
            ConstantIn(F("state"), (State.AWAITING_APPROVAL, State.QUEUED, *Deploy.ACTIVE_STATES)),
            environment_id__in=list(last_ran_ids),
        )
    )
    # Unordered: each list is sorted below.
    deploys = (
        deploys.select_related(
            "release", "requested_by", "rollback_of__release", "rollback_of__requested_by"
        )
        .only(*DEPLOY_LINE_FIELDS)
        .order_by()
    )
    activity = {pk: Activity() for pk in last_ran_ids}
    for deploy in deploys:
        here = activity[deploy.environment_id]
        if deploy.pk == last_ran_ids[deploy.environment_id]:
            here.last = [deploy]
            if deploy.kind == Deploy.Kind.AUTO_ROLLBACK and deploy.rollback_of is not None:
                here.last.insert(0, deploy.rollback_of)
        elif deploy.state in Deploy.ACTIVE_STATES:
            here.running = deploy
        elif deploy.state == State.QUEUED:
            here.queued.append(deploy)
        else:
            here.awaiting.append(deploy)
    for here in activity.values():
        here.awaiting.sort(key=lambda d: (d.created_at, d.pk))
        here.queued.sort(key=queue_sort_key)
    return activity
