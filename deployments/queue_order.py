"""The queue order of an environment, in one place: the engine claims by it
(``engine.claim``), and the overview, deploy page, request form and drawer read it
(``selectors.activity``, ``selectors.queue``).

Queued automatic rollbacks go first (the environment is broken), then a person's rollbacks
(once one starts, the lock it applies holds the others back), then first come, first served.
A deploy not queued yet (a request, or one awaiting approval) counts as queued now: it would
join behind everything already queued of its rank or higher.
"""

from __future__ import annotations

from django.db.models import Q

from deployments.models import Deploy

QUEUE_ORDER = (Deploy.Kind.AUTO_ROLLBACK, Deploy.Kind.ROLLBACK)


def _rank(kind: str) -> int:
    return QUEUE_ORDER.index(kind) if kind in QUEUE_ORDER else len(QUEUE_ORDER)


def queued_before(deploy: Deploy) -> Q:
    """The queued deploys of ``deploy``'s environment that go ahead of it (filter with it)."""
    higher = Q(kind__in=QUEUE_ORDER[: _rank(deploy.kind)])
    same = Q(kind=deploy.kind) if deploy.kind in QUEUE_ORDER else ~Q(kind__in=QUEUE_ORDER)
    if deploy.state != Deploy.State.QUEUED or deploy.queued_at is None:
        return higher | same
    earlier = Q(queued_at__lt=deploy.queued_at) | Q(queued_at=deploy.queued_at, pk__lt=deploy.pk)
    return higher | (same & earlier)


def queue_sort_key(deploy: Deploy) -> tuple:
    """Orders queued deploys as the engine takes them."""
    return (_rank(deploy.kind), deploy.queued_at or deploy.created_at, deploy.pk)
