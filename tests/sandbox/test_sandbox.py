"""The sandbox itself: control API, machine timing, faults, request log, the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import httpx
import pytest

from hotdash.sandbox import Clock, SandboxApp, World, demo
from tests.fixtures.sandbox import SandboxTransport

AUTH = {"Authorization": "Bearer t"}


@pytest.fixture
def http(sandbox):
    with httpx.Client(
        transport=SandboxTransport(app=sandbox.app), base_url=sandbox.url, headers=AUTH
    ) as client:
        yield client


def control(http: httpx.Client, method: str, path: str, body: dict | None = None) -> dict:
    response = http.request(method, f"/_sandbox{path}", json=body)
    assert response.status_code < 300, response.text
    return response.json()


def test_requests_need_a_token(http):
    response = http.get("/fly/v1/apps/hot-dash", headers={"Authorization": ""})
    assert response.status_code == 401
    response = http.get("/github/repos/hotdash-demo/hot-dash/pulls", headers={"Authorization": ""})
    assert response.status_code == 401
    assert set(response.json()) == {"message", "documentation_url", "status"}


def test_github_responses_carry_rate_limit_and_request_id_headers(http):
    response = http.get("/github/repos/hotdash-demo/hot-dash/releases")
    assert response.headers["x-ratelimit-limit"] == "5000"
    assert int(response.headers["x-ratelimit-remaining"]) < 5000
    assert response.headers["x-github-request-id"]


def test_machine_states_follow_the_clock(sandbox, http):
    machine = http.get("/fly/v1/apps/hot-dash/machines").json()[0]
    base = f"/fly/v1/apps/hot-dash/machines/{machine['id']}"
    http.post(f"{base}/stop")
    states = []
    for step in (0, 1, 1.5):
        control(http, "POST", "/clock", {"advance": step})
        states.append(http.get(base).json()["state"])
    assert states == ["stopping", "stopping", "stopped"]
    assert http.get(f"{base}/wait", params={"state": "started", "timeout": 3}).status_code == 408
    assert http.get(f"{base}/wait", params={"state": "bogus"}).status_code == 400


def test_control_api_reset_restores_the_demo_world(sandbox, http):
    control(http, "POST", "/pulls", {"title": "feat: a", "branch": "feature/a"})
    control(http, "POST", "/faults", {"kind": "status", "status": 500, "service": "github"})
    assert http.get("/github/repos/hotdash-demo/hot-dash/pulls").status_code == 500
    state = control(http, "POST", "/reset")
    assert state["github"]["pulls"] == {} and state["faults"] == []
    assert http.get("/github/repos/hotdash-demo/hot-dash/pulls").json() == []


def test_control_api_pull_lifecycle_and_release(sandbox, http):
    opened = control(http, "POST", "/pulls", {"title": "feat: b", "branch": "feature/b"})
    pushed = control(http, "POST", f"/pulls/{opened['number']}/push", {"message": "fix: typo"})
    assert pushed["head_sha"] != opened["head_sha"]
    merged = control(http, "POST", f"/pulls/{opened['number']}/close", {"merge": True})
    assert merged["merge_commit_sha"] == sandbox.github.branches["main"]
    release = control(http, "POST", "/releases", {"version": "1.4.0", "healthy": False})
    assert release["tag"] == "v1.4.0"
    machine = http.post(
        "/fly/v1/apps/hot-dash/machines",
        json={"config": {"image": "registry.fly.io/hot-dash:v1.4.0"}},
    ).json()
    assert machine["image_ref"]["labels"][demo.BROKEN_IMAGE_LABEL] == "fail"
    hooks = control(http, "GET", "/webhook")["deliveries"]
    assert [(d["event"], d["action"]) for d in hooks] == [
        ("pull_request", "opened"),
        ("pull_request", "synchronize"),
        ("pull_request", "closed"),
        ("push", None),
        ("push", None),
        ("release", "published"),
    ]


def test_control_api_health_checks_and_deployments(sandbox, http):
    control(http, "POST", "/health", {"fail_next": 2})
    control(http, "POST", "/health", {"image": "registry.fly.io/hot-dash:v1.1.0"})
    assert sandbox.fly.fail_next == 2
    assert "registry.fly.io/hot-dash:v1.1.0" in sandbox.fly.broken_images
    control(http, "POST", "/checks", {"ref": "v1.3.0", "name": "lint", "conclusion": "failure"})
    control(http, "POST", "/deployments", {"next": [202]})
    deployments = "/github/repos/hotdash-demo/hot-dash/deployments"
    assert http.post(deployments, json={"ref": "v1.3.0"}).status_code == 202
    assert http.post(deployments, json={"ref": "v1.3.0"}).status_code == 409


def test_control_api_changes_what_the_compliance_sweep_reads(sandbox, http):
    repo = "/github/repos/hotdash-demo/hot-dash"
    protection = f"{repo}/branches/main/protection"
    control(http, "POST", "/branch-protection", {"allow_deletions": True, "remove_check": "lint"})
    body = http.get(protection).json()
    assert body["allow_deletions"] == {"enabled": True}
    assert "lint" not in body["required_status_checks"]["contexts"]
    assert http.post("/_sandbox/branch-protection", json={"bogus": 1}).status_code == 400
    control(http, "POST", "/branch-protection", {"protected": False})
    assert http.get(protection).status_code == 404

    control(http, "POST", "/security", {"secret_scanning_push_protection": False})
    features = http.get(repo).json()["security_and_analysis"]
    assert features["secret_scanning_push_protection"] == {"status": "disabled"}
    alert = control(http, "POST", "/secret-scanning/alerts", {"secret": "ghp_x"})
    assert "secret" not in alert
    alerts = f"{repo}/secret-scanning/alerts"
    assert http.get(alerts).json()[0]["secret"] == "ghp_x"
    assert "secret" not in http.get(alerts, params={"hide_secret": "true"}).json()[0]
    control(http, "POST", f"/secret-scanning/alerts/{alert['number']}/resolve", {})
    assert http.get(alerts, params={"state": "open"}).json() == []

    control(http, "POST", "/secrets", {"where": "github", "name": "NEW_TOKEN", "age_days": 200})
    names = [s["name"] for s in http.get(f"{repo}/actions/secrets").json()["secrets"]]
    assert "NEW_TOKEN" in names
    control(http, "POST", "/secrets", {"where": "hot-dash", "name": "SECRET_KEY", "age_days": 1})
    control(http, "POST", "/fly-apps", {"name": "other-app", "like": "staging"})
    assert len(http.get("/fly/v1/apps/other-app/machines").json()) == 1
    changed = control(http, "POST", "/machines", {"app": "other-app", "guest": {"cpus": 8}})
    assert changed["config"]["guest"]["cpus"] == 8
    control(http, "POST", "/machines", {"app": "other-app", "destroy": True})
    assert http.get("/fly/v1/apps/other-app/machines").json() == []


def test_request_log_records_faults_and_can_be_cleared(sandbox, http):
    control(
        http, "POST", "/faults", {"kind": "lose", "service": "fly", "method": "POST", "times": 1}
    )
    machine_id = sandbox.fly.summary()["hot-dash"][0]["id"]
    assert http.post(f"/fly/v1/apps/hot-dash/machines/{machine_id}/stop").status_code == 502
    assert sandbox.fly.summary()["hot-dash"][0]["state"] == "stopping"  # applied anyway
    log = control(http, "GET", "/requests?service=fly")
    assert [(r["method"], r["status"], r["fault"]) for r in log] == [("POST", 502, "lose")]
    assert control(http, "DELETE", "/requests") == []
    assert control(http, "GET", "/requests") == []


def test_error_rate_fault_is_deterministic_per_seed():
    def outcomes() -> list[int]:
        world = World(seed=7)
        world.add_fault("error", rate=0.5, status=500)
        client = httpx.Client(transport=SandboxTransport(app=SandboxApp(world)), headers=AUTH)
        return [client.get("http://s/fly/v1/apps/hot-dash").status_code for _ in range(20)]

    first = outcomes()
    assert first == outcomes()
    assert {200, 500} == set(first)


def test_latency_fault_delays_in_real_time(sandbox, http):
    control(http, "POST", "/faults", {"kind": "latency", "seconds": 0.2, "times": 1})
    elapsed = http.get("/fly/v1/apps/hot-dash").elapsed.total_seconds()
    assert elapsed >= 0.2


def test_running_clock_scales_with_speed():
    clock = Clock(start=1000.0, speed=50.0, frozen=False)
    world = World(clock=clock)
    machine = next(iter(world.fly.machines.values()))
    assert machine.state(clock.now()) == "started"
    assert 1000.0 <= clock.now() < 1000.0 + 50.0


def test_unknown_fault_kind_is_refused(http):
    response = http.post("/_sandbox/faults", json={"kind": "meteor"})
    assert response.status_code == 400
    assert "unknown fault kind" in response.json()["error"]


def test_management_command_serves_on_a_port():
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    env = {**os.environ, "DEBUG": "true", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(manage), "sandbox", "--port", "0", "--speed", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = process.stdout.readline()
        if not banner:
            pytest.fail(f"the command did not start:\n{process.stderr.read()}")
        root = banner.split(" ")[2].rstrip(":")
        assert root.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{root}/_sandbox/state", timeout=5) as response:
            state = json.load(response)
        assert {m["image"] for m in state["fly"]["hot-dash"]} == {
            demo.release(demo.LIVE_VERSIONS["production"]).image_ref
        }
    finally:
        process.terminate()
        process.wait(timeout=10)
