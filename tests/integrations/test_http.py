"""The client factory, error mapping, retries and secrecy of tokens."""

from __future__ import annotations

import logging
import pickle
import time
import traceback

import httpx
import pytest

from hotdash.integrations.fly import fly_client
from hotdash.integrations.github import github_client
from hotdash.integrations.http import (
    FLY,
    GITHUB,
    APIError,
    PermanentAPIError,
    RetryableAPIError,
    RetryPolicy,
    build_client,
    use_transport,
)
from hotdash.sandbox import demo
from hotdash.version import __version__
from tests.fixtures.sandbox import UnplannedNetworkCall

MACHINES = "/apps/hot-dash/machines"


def capture(handler):
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return seen, httpx.MockTransport(respond)


def test_factory_sends_user_agent_auth_and_provider_headers():
    seen, transport = capture(lambda request: httpx.Response(200, json={}))
    with use_transport(transport):
        build_client(FLY, base_url="https://fly.test/v1", token="tok").request("GET", "/apps")
        build_client(FLY, base_url="https://fly.test/v1", token="FlyV1 fm2_abc").get_json("/a")
        build_client(GITHUB, base_url="https://gh.test", token="ghp").get_json("/repos/o/r")
    fly_plain, fly_macaroon, gh = seen
    assert fly_plain.url == "https://fly.test/v1/apps"
    assert fly_plain.headers["user-agent"] == f"hotdash/{__version__}"
    assert fly_plain.headers["authorization"] == "Bearer tok"
    assert fly_macaroon.headers["authorization"] == "FlyV1 fm2_abc"
    assert gh.headers["authorization"] == "Bearer ghp"
    assert gh.headers["x-github-api-version"] == "2022-11-28"
    assert gh.headers["accept"] == "application/vnd.github+json"
    assert "x-github-api-version" not in fly_plain.headers


def test_timeouts_are_explicit(settings):
    client = build_client(FLY, base_url="https://fly.test", token="t")
    assert client.deadline == settings.HTTP_TIMEOUT_SECONDS == 30
    assert client.http.timeout.read == 10.0
    assert client.http.timeout.connect == 5.0
    settings.HTTP_TIMEOUT_SECONDS = 3
    short = build_client(FLY, base_url="https://fly.test", token="t")
    assert short.deadline == 3
    assert (short.http.timeout.read, short.http.timeout.connect) == (3, 3)


def test_dripping_body_is_cut_at_the_deadline_and_retried(live_sandbox, settings, sleeps):
    # One byte every 0.2 s: no single read waits long enough for the 5 s read timeout.
    settings.HTTP_TIMEOUT_SECONDS = 1
    live_sandbox.add_fault("drip", service="fly", path="^/apps/hot-dash$", seconds=0.2, times=1)
    once = fly_client(timeout=httpx.Timeout(5.0), retry=RetryPolicy(attempts=1))
    started = time.monotonic()
    with pytest.raises(RetryableAPIError) as caught:
        once.get_app("hot-dash")
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 2.0
    assert caught.value.status is None
    assert caught.value.message == "timed out (deadline of 1 s)"

    live_sandbox.add_fault("drip", service="fly", path="^/apps/hot-dash$", seconds=0.2, times=1)
    retrying = fly_client(timeout=httpx.Timeout(5.0), sleep=sleeps.append)
    assert retrying.get_app("hot-dash").name == "hot-dash"
    assert len(sleeps) == 1
    calls = live_sandbox.calls("GET", "^/apps/hot-dash$")
    assert [c.fault for c in calls] == ["drip", "drip", None]


def test_slow_body_within_the_deadline_is_read_whole(live_sandbox, settings):
    settings.HTTP_TIMEOUT_SECONDS = 5
    live_sandbox.add_fault("drip", service="fly", path="^/apps/hot-dash$", seconds=0.05, chunk=64)
    assert fly_client(retry=RetryPolicy(attempts=1)).get_app("hot-dash").name == "hot-dash"
    assert [c.fault for c in live_sandbox.calls("GET", "^/apps/hot-dash$")] == ["drip"]


def test_a_long_poll_gets_its_own_deadline(live_sandbox, settings):
    # Fly's /wait is sent with a read timeout above the deadline; the answer may take that long.
    settings.HTTP_TIMEOUT_SECONDS = 1
    live_sandbox.add_fault("drip", service="fly", path="^/apps/hot-dash$", seconds=0.1, chunk=8)
    client = fly_client(retry=RetryPolicy(attempts=1))
    response = client.api.send_once("GET", "/apps/hot-dash", timeout=httpx.Timeout(3.0))
    assert response.json()["name"] == "hot-dash"


def test_unplanned_network_calls_fail_loudly():
    client = build_client(GITHUB, base_url="https://api.github.com", token="t")
    with pytest.raises(UnplannedNetworkCall, match="api.github.com"):
        client.get_json("/rate_limit")


def test_429_retry_after_is_honoured(sandbox, fly, sleeps):
    sandbox.add_fault("rate_limit", service="fly", path=MACHINES + "$", retry_after=7, times=1)
    machines = fly.list_machines("hot-dash")
    assert len(machines) == 2
    assert sleeps == [7.0]
    assert [c.status for c in sandbox.calls("GET", MACHINES)] == [429, 200]


def test_github_primary_rate_limit_waits_until_reset(sandbox, github, sleeps):
    sandbox.add_fault("rate_limit", service="github", status=403, reset_in=8, times=1)
    assert github.actions_secrets()
    assert len(sleeps) == 1
    assert 6 <= sleeps[0] <= 9


def test_github_secondary_rate_limit_is_retryable(sandbox, github, sleeps):
    sandbox.add_fault("rate_limit", service="github", status=403, retry_after=3, times=1)
    assert github.branch_protection("main") is not None
    assert sleeps == [3.0]


def test_server_wait_beyond_budget_is_raised_with_retry_after(sandbox, fly, sleeps):
    sandbox.add_fault("rate_limit", service="fly", retry_after=600, times=1)
    with pytest.raises(RetryableAPIError) as caught:
        fly.get_app("hot-dash")
    assert caught.value.status == 429
    assert caught.value.retry_after == 600
    assert sleeps == []


def test_burst_of_503_recovers_within_budget_with_capped_backoff(sandbox, fly, sleeps):
    sandbox.add_fault("status", service="fly", status=503, times=3)
    assert fly.get_app("hot-dash").name == "hot-dash"
    assert len(sandbox.calls("GET", "/apps/hot-dash")) == 4
    policy = RetryPolicy()
    for attempt, delay in enumerate(sleeps):
        ceiling = min(policy.max_delay, policy.base_delay * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling


def test_burst_longer_than_budget_raises_retryable(sandbox, fly, sleeps):
    sandbox.add_fault("status", service="fly", status=503, times=10)
    with pytest.raises(RetryableAPIError) as caught:
        fly.get_app("hot-dash")
    error = caught.value
    assert (error.status, error.method, error.path) == (503, "GET", "/fly/v1/apps/hot-dash")
    assert error.request_id
    assert len(sleeps) == RetryPolicy().attempts - 1


def test_404_is_permanent_and_not_retried(sandbox, fly, sleeps):
    with pytest.raises(PermanentAPIError) as caught:
        fly.get_machine("hot-dash", "does-not-exist")
    assert caught.value.status == 404
    assert "not found" in caught.value.message
    assert caught.value.request_id.startswith("01SBX")
    assert len(sandbox.calls("GET", MACHINES + "/does-not-exist")) == 1
    assert sleeps == []


def test_422_is_permanent(sandbox, fly):
    with pytest.raises(PermanentAPIError) as caught:
        fly.create_app("hot-dash", demo.FLY_ORG)
    assert caught.value.status == 422
    assert "already been taken" in str(caught.value)
    assert len(sandbox.calls("POST", "/apps")) == 1


def test_plain_post_is_not_retried_blindly(sandbox, fly, sleeps):
    sandbox.add_fault("status", service="fly", method="POST", status=503, times=1)
    with pytest.raises(RetryableAPIError):
        fly.api.request("POST", "/apps", json={"app_name": "x", "org_slug": demo.FLY_ORG})
    assert len(sandbox.calls("POST", "/apps")) == 1
    assert sleeps == []


def test_hang_surfaces_as_retryable_timeout(live_sandbox, sleeps):
    live_sandbox.add_fault("hang", service="fly", path="^/apps/hot-dash$", seconds=3, times=1)
    client = fly_client(timeout=httpx.Timeout(0.3), retry=RetryPolicy(attempts=1))
    with pytest.raises(RetryableAPIError) as caught:
        client.get_app("hot-dash")
    assert caught.value.status is None
    assert "timed out" in caught.value.message
    retrying = fly_client(timeout=httpx.Timeout(0.3), sleep=sleeps.append)
    live_sandbox.add_fault("hang", service="fly", path="^/apps/hot-dash$", seconds=3, times=1)
    assert retrying.get_app("hot-dash").name == "hot-dash"
    assert len(sleeps) == 1


def test_dropped_connection_is_retryable(live_sandbox, sleeps):
    live_sandbox.add_fault("drop", service="github", path="/pulls$", times=1)
    client = github_client(demo.REPO_OWNER, demo.REPO_NAME, sleep=sleeps.append)
    assert client.list_pulls() == []
    assert [c.status for c in live_sandbox.calls("GET", ".*/pulls")] == [0, 200]


def test_tokens_never_reach_exceptions_or_logs(sandbox, settings, caplog, sleeps):
    token = "s3cret-token-value-123"
    settings.FLY_API_TOKEN = token
    settings.GITHUB_TOKEN = f"FlyV1 {token}"
    caplog.set_level(logging.DEBUG)
    errors: list[APIError] = []
    fly = fly_client(sleep=sleeps.append)
    sandbox.add_fault("status", service="fly", status=503, times=10)
    for call in (lambda: fly.get_app("hot-dash"), lambda: fly.get_app("missing")):
        with pytest.raises(APIError) as caught:
            call()
        errors.append(caught.value)
    sandbox.clear_faults()
    with pytest.raises(PermanentAPIError) as caught:
        fly.get_app("missing")
    errors.append(caught.value)

    # A server that echoes the credential back in its error body.
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": f"bad {request.headers['authorization']}"})

    with use_transport(httpx.MockTransport(echo)), pytest.raises(PermanentAPIError) as caught:
        github_client("o", "r").get_pull(1)
    errors.append(caught.value)

    for error in errors:
        text = "".join(traceback.format_exception(error)) + repr(error) + str(error.__dict__)
        assert token not in text
    assert "[redacted]" in errors[-1].message
    assert caplog.records, "retries should have been logged"
    assert token not in caplog.text


def test_errors_survive_pickling_for_celery():
    error = RetryableAPIError(
        "boom", provider="fly", method="GET", path="/x", status=503, request_id="r", retry_after=2
    )
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is RetryableAPIError
    assert (clone.status, clone.request_id, clone.retry_after, str(clone)) == (
        503,
        "r",
        2,
        str(error),
    )
