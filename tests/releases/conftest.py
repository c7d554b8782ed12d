"""Rollback fixtures: the engine's driver, running a rollback's steps in-process."""

from __future__ import annotations

import pytest

from tests.engine.conftest import Driver


@pytest.fixture
def driver(sandbox, time_machine, settings):
    settings.DEPLOY_POLL_SECONDS = 1
    settings.DEPLOY_QUEUE_POLL_SECONDS = 1
    time_machine.move_to(sandbox.clock.now(), tick=False)
    return Driver(sandbox=sandbox, traveller=time_machine)
