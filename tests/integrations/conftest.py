"""Client factories wired to a sandbox with a recorded, instant sleep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hotdash.integrations.fly import FlyClient, fly_client
from hotdash.integrations.github import GitHubClient, github_client
from hotdash.sandbox import demo


@pytest.fixture
def sleeps() -> list[float]:
    """Every wait a client asked for (the injected sleep records instead of sleeping)."""
    return []


@pytest.fixture
def make_fly(sandbox: Any, sleeps: list[float]) -> Callable[..., FlyClient]:
    def make(**options: Any) -> FlyClient:
        # The sandbox's virtual clock drives /wait deadlines, so waits are instant and exact.
        options.setdefault("clock", sandbox.clock.now)
        options.setdefault("sleep", sleeps.append)
        return fly_client(**options)

    return make


@pytest.fixture
def fly(make_fly: Callable[..., FlyClient]) -> FlyClient:
    return make_fly()


@pytest.fixture
def github(sandbox: Any, sleeps: list[float]) -> GitHubClient:
    return github_client(demo.REPO_OWNER, demo.REPO_NAME, sleep=sleeps.append)
