from __future__ import annotations

import pytest

from deployments.rollout import batch_size, plan_batches


@pytest.mark.parametrize(
    ("count", "percent", "expected"),
    [(2, 30, 1), (10, 30, 3), (3, 30, 1), (4, 50, 2), (1, 100, 1), (7, 100, 7), (0, 30, 0)],
)
def test_batch_size_is_the_percentage_but_at_least_one(count, percent, expected):
    assert batch_size(count, percent) == expected


def test_batches_keep_order_and_cover_every_machine():
    machines = [f"m{i}" for i in range(10)]
    batches = plan_batches(machines, 30)
    assert batches == [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6", "m7", "m8"], ["m9"]]
    assert plan_batches([], 30) == []
