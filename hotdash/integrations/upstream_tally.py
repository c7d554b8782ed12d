"""Counts of the requests this process sent to Fly and GitHub, kept in memory until drained.

Every request :class:`hotdash.integrations.http.ApiClient` sends (each attempt, retries too) is
observed here: its provider, method, HTTP status (``error`` when no answer came) and how long it
took. Workers make most of these calls on machines no scraper reaches, so the counts are not
exposed from this process: ``deployments.services.upstream_metrics`` drains them into the
database every few seconds, and /metrics reads them from there.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

# Upper bounds (seconds) of the request duration histogram's buckets; one more bucket holds
# anything slower.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def bucket_of(seconds: float) -> int:
    """The index of the first bucket whose bound is at least ``seconds``."""
    return next(
        (i for i, bound in enumerate(DURATION_BUCKETS) if seconds <= bound), len(DURATION_BUCKETS)
    )


@dataclass
class Tally:
    """What was observed since the last drain."""

    # (provider, method, status) -> (count, total seconds)
    requests: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)
    # (provider, bucket index) -> count
    buckets: Counter = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.requests)


_lock = threading.Lock()
_tally = Tally()
_last_drain = time.monotonic()


def observe(*, provider: str, method: str, status: str, seconds: float) -> None:
    with _lock:
        _tally.requests[(provider, method, status)] += 1
        _tally.seconds[(provider, method, status)] += seconds
        _tally.buckets[(provider, bucket_of(seconds))] += 1


def drain(*, every: float = 0.0) -> Tally:
    """Take what was observed (and start afresh), or an empty tally when the last drain was
    less than ``every`` seconds ago."""
    global _tally, _last_drain
    with _lock:
        now = time.monotonic()
        if now - _last_drain < every:
            return Tally()
        taken, _tally, _last_drain = _tally, Tally(), now
    return taken


def restore(taken: Tally) -> None:
    """Put back a drained tally that could not be stored, so that the next drain has it."""
    with _lock:
        _tally.requests.update(taken.requests)
        _tally.seconds.update(taken.seconds)
        _tally.buckets.update(taken.buckets)
