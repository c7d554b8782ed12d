"""Rate limits: the engine never sends the next attempt before the server allows it, a
rate limit with no wait named waits at least a minute and doubles, each limit costs one
attempt, and a deploy that stays limited fails saying until when."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from deployments.models import Deploy
from tests.engine.conftest import make_deploy

CREATE = r"/repos/hotdash-demo/hot-dash/deployments"
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


def test_github_429_retry_after_7_is_waited_out_by_the_engine(
    production, release_130, requester, driver, sandbox
):
    sandbox.add_fault(
        "rate_limit", service="github", method="POST", path=CREATE + "$", retry_after=7, times=1
    )
    deploy = make_deploy(production, release_130, requested_by=requester)
    waits = countdowns(driver, deploy)
    assert deploy.state == Deploy.State.SUCCEEDED
    limited_at, retried_at = limited_then_retried(sandbox, "POST", CREATE, service="github")
    assert retried_at - limited_at >= 7
    assert 7 in waits  # the server's wait, not the engine's shorter 2 s backoff
    assert deploy.attempts == 2  # the limit cost exactly one attempt


def test_github_403_with_reset_is_not_retried_before_the_reset(
    production, release_130, requester, driver, sandbox
):
    reset = sandbox.clock.now() + 20
    sandbox.add_fault(
        "rate_limit",
        service="github",
        method="POST",
        path=CREATE + "$",
        status=403,
        reset_in=20,
        times=1,
    )
    deploy = make_deploy(production, release_130, requested_by=requester)
    countdowns(driver, deploy)
    assert deploy.state == Deploy.State.SUCCEEDED
    limited_at, retried_at = limited_then_retried(sandbox, "POST", CREATE, service="github")
    assert retried_at >= reset > limited_at
    assert deploy.attempts == 2


def test_github_secondary_limit_without_headers_waits_a_minute_then_doubles(
    production, release_130, requester, driver, sandbox
):
    sandbox.add_fault(
        "rate_limit", service="github", method="POST", path=CREATE + "$", status=403, times=3
    )
    deploy = make_deploy(production, release_130, requested_by=requester)
    countdowns(driver, deploy)
    assert deploy.state == Deploy.State.SUCCEEDED  # a 403 secondary limit is not permanent
    posts = sandbox.calls("POST", CREATE, service="github")
    assert [call.status for call in posts] == [403, 403, 403, 201]
    gaps = [later.at - earlier.at for earlier, later in pairwise(posts)]
    assert gaps[0] >= 60 and gaps[1] >= 120 and gaps[2] >= 240
    assert deploy.attempts == 4


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


def test_a_deploy_that_stays_rate_limited_fails_saying_until_when(
    production, release_130, requester, driver, sandbox, settings
):
    settings.DEPLOY_MAX_ATTEMPTS = 3
    sandbox.add_fault(
        "rate_limit", service="github", method="POST", path=CREATE + "$", status=403, reset_in=300
    )
    deploy = make_deploy(production, release_130, requested_by=requester)
    waits = countdowns(driver, deploy)
    assert deploy.state == Deploy.State.FAILED
    posts = sandbox.calls("POST", CREATE, service="github")
    assert len(posts) == 3  # one per attempt: each limit cost one, none was wasted early
    assert all(later.at - earlier.at >= 300 for earlier, later in pairwise(posts))
    assert waits == [pytest.approx(300, abs=1)] * 2
    reset = posts[-1].at + 300  # the last refusal's reset, shown rounded up to the minute
    until = datetime.fromtimestamp(math.ceil(reset / 60) * 60, tz=UTC).strftime("%H:%M")
    assert f"GitHub rate-limited until {until} UTC" in deploy.error, deploy.error
