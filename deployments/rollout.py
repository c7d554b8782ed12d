"""The rolling-deploy algorithm as plain code: batches, waits and verdicts. No database, no HTTP."""

from __future__ import annotations

import math
from collections.abc import Sequence


def batch_size(machine_count: int, max_unavailable_percent: int) -> int:
    """How many machines may be down at once: the percentage of the fleet, at least one."""
    if machine_count <= 0:
        return 0
    return max(1, math.floor(machine_count * max_unavailable_percent / 100))


def plan_batches(machine_ids: Sequence[str], max_unavailable_percent: int) -> list[list[str]]:
    """Split machines into consecutive batches of ``batch_size``; order is preserved."""
    if not machine_ids:
        return []
    size = batch_size(len(machine_ids), max_unavailable_percent)
    return [list(machine_ids[i : i + size]) for i in range(0, len(machine_ids), size)]


def health_deadline_seconds(*, grace: int, timeout: int, attempts: int) -> int:
    """How long after an update a machine may take to be started with passing checks:
    the grace period, then ``attempts`` checks of up to ``timeout`` seconds each."""
    return grace + timeout * max(1, attempts)


def retry_delay(attempt: int, *, retry_after: float | None = None, cap: float = 60.0) -> float:
    """Seconds before retrying after a retryable upstream error: what the server asked for
    (never less: an earlier retry is refused again and burns an attempt), else doubling from
    2 s up to ``cap``."""
    if retry_after is not None:
        return max(1.0, retry_after)
    return min(cap, 2.0 ** max(1, attempt))
