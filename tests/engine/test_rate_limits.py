"""Rate limits: the engine never sends the next attempt before the server allows it, and each
limit costs one attempt. (GitHub's limits meet the outbox, not the rollout:
test_github_reports.py.)"""

from __future__ import annotations

import pytest

from deployments.models import Deploy
from tests.engine.conftest import make_deploy

LEASE = r"/apps/hot-dash/machines/[0-9a-f]+/lease"


@pytest.fixture(autouse=True)
def reschedule_every_server_wait(settings):
    """Every server-named wait goes back to the engine as a countdown (none is slept in the
    client), so the Driver moves the sandbox's clock through it."""
    settings.HTTP_MAX_SERVER_WAIT_SECONDS = 0


def countdowns(driver, deploy: Deploy) -> list[float]:
    """Run ``deploy`` to its end like the task chain would; the countdown of every rescheduling."""
    seen: list[float] = []
    for _ in range(200):
        following = driver.run_once(deploy)
        deploy.refresh_from_db()
        if following is None:
            return seen
        seen.append(following.countdown)
        driver.tick(max(following.countdown, 0.5))
    raise AssertionError(f"deploy #{deploy.pk} still {deploy.state}")


def limited_then_retried(sandbox, method: str, path: str, *, service: str) -> tuple[float, float]:
    """When the (first) rate-limited call came, and when its next attempt did."""
    calls = sandbox.calls(method, path, service=service)
    limited = [i for i, call in enumerate(calls) if call.fault == "rate_limit"]
    assert limited, "the fault never fired"
    last = limited[-1]
    return calls[limited[0]].at, calls[last + 1].at


def test_fly_429_retry_after_is_waited_out_by_the_engine(
    production, release_130, requester, driver, sandbox
):
    sandbox.add_fault(
        "rate_limit", service="fly", method="POST", path=LEASE + "$", retry_after=9, times=1
    )
    deploy = make_deploy(production, release_130, requested_by=requester)
    waits = countdowns(driver, deploy)
    assert deploy.state == Deploy.State.SUCCEEDED
    limited_at, retried_at = limited_then_retried(sandbox, "POST", LEASE, service="fly")
    assert retried_at - limited_at >= 9
    assert 9 in waits
