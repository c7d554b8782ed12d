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
    size = batch_size(len(machine_ids), max_unavailable_percent)
    return [list(machine_ids[i : i + size]) for i in range(0, len(machine_ids), size)]
