"""Adds this process's counts of Fly and GitHub requests (hotdash.integrations.upstream_tally)
to the database, where /metrics reads every process's sum.

Why not prometheus-client's multiprocess mode: it sums processes sharing one directory on one
host, but HotDash's workers run on their own machines (fly.toml's process groups), which no
scraper reaches. Called after each task and each web request, at most every
FLUSH_EVERY_SECONDS per process, and when a worker process stops; a process killed outright
loses at most those seconds of counts.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, transaction
from django.db.models import F

from deployments.models import UpstreamDurationBucket, UpstreamRequestCount
from hotdash.integrations import upstream_tally

log = logging.getLogger(__name__)

FLUSH_EVERY_SECONDS = 10.0


def upstream_metrics_store(*, every: float | None = None) -> int:
    """Add what this process counted since the last store (if that was ``every`` seconds ago
    or more, by default FLUSH_EVERY_SECONDS); returns how many requests were added. A
    database error keeps the counts for the next call."""
    taken = upstream_tally.drain(every=FLUSH_EVERY_SECONDS if every is None else every)
    if not taken:
        return 0
    try:
        with transaction.atomic():
            for (provider, method, status), count in sorted(taken.requests.items()):
                key = {"provider": provider, "method": method, "status": status}
                UpstreamRequestCount.objects.get_or_create(**key)
                UpstreamRequestCount.objects.filter(**key).update(
                    count=F("count") + count,
                    seconds=F("seconds") + taken.seconds[(provider, method, status)],
                )
            for (provider, bucket), count in sorted(taken.buckets.items()):
                UpstreamDurationBucket.objects.get_or_create(provider=provider, bucket=bucket)
                UpstreamDurationBucket.objects.filter(provider=provider, bucket=bucket).update(
                    count=F("count") + count
                )
    except DatabaseError:
        upstream_tally.restore(taken)
        log.warning("could not store upstream request counts; kept for the next try")
        return 0
    return sum(taken.requests.values())
