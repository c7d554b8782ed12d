"""Rate limits inside the API client: what counts as one, how long it waits, what it says,
and the spacing of GitHub mutations."""

from __future__ import annotations

import math
import threading
import time

import pytest

from hotdash.integrations import PermanentAPIError, RetryableAPIError
from hotdash.integrations.github import github_client
from hotdash.integrations.http import use_transport
from hotdash.sandbox import SandboxApp, World, demo
from hotdash.sandbox.world import DEMO_NOW, Clock
from tests.fixtures.sandbox import SandboxTransport

PROTECTION = r"/repos/hotdash-demo/hot-dash/branches/main/protection"


def test_secondary_limit_without_headers_waits_a_minute_then_doubles(sandbox, github, sleeps):
    sandbox.add_fault("rate_limit", service="github", status=403, path=PROTECTION, times=2)
    waits = []
    for _ in range(2):
        with pytest.raises(RetryableAPIError) as caught:  # 60 s is more than the client sleeps
            github.branch_protection("main")
        assert caught.value.status == 403
        assert "GitHub rate-limited until" in str(caught.value)
        assert "secondary rate limit" in str(caught.value)
        waits.append(caught.value.retry_after)
    assert waits == [60, 120]
    assert sleeps == []
    assert github.branch_protection("main") is not None  # the fault is spent
    sandbox.add_fault("rate_limit", service="github", status=403, path=PROTECTION, times=1)
    with pytest.raises(RetryableAPIError) as caught:
        github.branch_protection("main")
    assert caught.value.retry_after == 60  # a success of that method started over


def test_a_secondary_limit_on_writes_keeps_doubling_while_reads_succeed(sandbox, github):
    number = sandbox.open_pull("feat: x", "feature/x")["number"]
    sandbox.add_fault("rate_limit", service="github", method="POST", status=403, times=2)
    waits = []
    for _ in range(2):
        with pytest.raises(RetryableAPIError) as caught:
            github.create_comment(number, "hello")
        waits.append(caught.value.retry_after)
        assert github.list_comments(number) == []  # a read in between succeeds
    assert waits == [60, 120]


def test_a_wait_the_client_may_sleep_is_slept_in_process(sandbox, github, sleeps, settings):
    settings.HTTP_MAX_SERVER_WAIT_SECONDS = 60
    client = github_client(demo.REPO_OWNER, demo.REPO_NAME, sleep=sleeps.append)
    sandbox.add_fault("rate_limit", service="github", status=403, path=PROTECTION, times=1)
    assert client.branch_protection("main") is not None
    assert sleeps == [60]


def test_a_403_that_is_not_a_rate_limit_stays_permanent(sandbox, github, sleeps):
    sandbox.add_fault("status", service="github", status=403, path=PROTECTION, times=1)
    with pytest.raises(PermanentAPIError):
        github.branch_protection("main")
    assert len(sandbox.calls("GET", PROTECTION)) == 1


def test_github_429_names_until_when_it_is_limited(sandbox, github, sleeps):
    sandbox.add_fault("rate_limit", service="github", path=PROTECTION, retry_after=90, times=1)
    before = time.time()
    with pytest.raises(RetryableAPIError) as caught:
        github.branch_protection("main")
    after = time.time()
    assert caught.value.status == 429
    assert caught.value.retry_after == 90
    # The reset (now + 90 s) rounded up to the minute; "now" lies between before and after.
    candidates = {
        time.strftime("%H:%M", time.gmtime(math.ceil((moment + 90) / 60) * 60))
        for moment in (before, after)
    }
    assert any(f"GitHub rate-limited until {u} UTC" in str(caught.value) for u in candidates)


def test_fly_429_without_headers_uses_the_normal_backoff(sandbox, fly, sleeps):
    sandbox.add_fault("status", service="fly", status=429, path="^/apps/hot-dash$", times=1)
    assert fly.get_app("hot-dash").name == "hot-dash"
    assert len(sleeps) == 1 and sleeps[0] < 1  # Fly's limits are per second, not per minute


def test_github_mutations_are_spaced_a_second_apart(settings):
    """With the real pacing and real sleeps, against a sandbox whose clock runs with the wall
    clock: the request log shows each write at least 1 s after the previous one, and a read
    is not held back."""
    settings.GITHUB_MUTATION_SPACING_MS = 1000
    world = World(clock=Clock(start=DEMO_NOW.timestamp(), frozen=False))
    settings.GITHUB_API_URL = "http://sandbox.test/github"
    number = world.open_pull("feat: paced", "feature/paced")["number"]
    with use_transport(SandboxTransport(app=SandboxApp(world))):
        client = github_client(demo.REPO_OWNER, demo.REPO_NAME)
        first = client.create_comment(number, "one")
        client.update_comment(first.id, "one, edited")
        client.list_comments(number)
        client.create_comment(number, "two")
    calls = [
        c
        for c in world.calls(service="github")
        if c.path.endswith("/comments") or "/comments/" in c.path
    ]
    assert [c.method for c in calls] == ["POST", "PATCH", "GET", "POST"]
    post, patch, get, second_post = (c.at for c in calls)
    assert patch - post >= 1.0
    assert get - patch < 0.5
    assert second_post - patch >= 1.0


def test_a_paced_write_waits_for_its_turn_outside_the_lock(settings, sandbox):
    """Two threads writing through one client: the second waits for its turn, but the pacing
    lock is free while it waits (it is never slept under)."""
    settings.GITHUB_MUTATION_SPACING_MS = 1000
    number = sandbox.world.open_pull("feat: paced", "feature/paced")["number"]
    waits: list[tuple[float, bool]] = []

    def sleep(seconds: float) -> None:
        waits.append((seconds, client.api._throttle._lock.locked()))

    client = github_client(demo.REPO_OWNER, demo.REPO_NAME, sleep=sleep)
    writers = [
        threading.Thread(target=client.create_comment, args=(number, text))
        for text in ("one", "two")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    [(seconds, locked)] = waits
    assert 0 < seconds <= 1.0
    assert not locked
