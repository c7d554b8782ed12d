"""FlyClient against the sandbox's Machines API."""

from __future__ import annotations

import pytest

from hotdash.integrations.fly import CREATE_KEY
from hotdash.integrations.http import PermanentAPIError, RetryableAPIError
from hotdash.sandbox import demo

PROD = demo.PRODUCTION_FLY_APP
LIVE = demo.release(demo.LIVE_VERSIONS["production"])
NEXT = demo.release("1.3.0")


def config_for(version: str, environment: str = "production") -> dict:
    return demo.machine_config(version, environment)


def test_apps_list_get_create_delete(sandbox, fly):
    assert {a.name for a in fly.list_apps(demo.FLY_ORG)} == {PROD, demo.STAGING_FLY_APP}
    app = fly.get_app(PROD)
    assert (app.name, app.org_slug, app.status) == (PROD, demo.FLY_ORG, "deployed")
    created = fly.create_app("hot-dash-pr-18", demo.FLY_ORG)
    assert created.status == "pending"
    assert fly.find_app("hot-dash-pr-18") == created
    fly.delete_app("hot-dash-pr-18", force=True)
    fly.delete_app("hot-dash-pr-18")  # already gone: still fine
    assert fly.find_app("hot-dash-pr-18") is None


def test_seeded_production_machines(fly):
    machines = fly.list_machines(PROD)
    assert len(machines) == 2
    for machine in machines:
        assert (machine.state, machine.region) == ("started", demo.REGION)
        assert machine.image == LIVE.image_ref
        assert machine.image_ref.digest == LIVE.image_digest
        assert machine.image_ref.tag == LIVE.tag
        assert machine.config["guest"] == {"cpu_kind": "shared", "cpus": 2, "memory_mb": 2048}
        assert machine.metadata["fly_process_group"] == "app"
        assert {c.name for c in machine.checks} == {"http", "tcp"}
        assert machine.healthy
        assert machine.events[0].type == "start"
    staging = fly.list_machines(demo.STAGING_FLY_APP)
    assert [m.image for m in staging] == [demo.release(demo.LIVE_VERSIONS["staging"]).image_ref]


def test_list_filters_by_metadata(fly):
    assert len(fly.list_machines(PROD, metadata={"fly_process_group": "app"})) == 2
    assert fly.list_machines(PROD, metadata={"fly_process_group": "worker"}) == []


def test_create_boots_then_checks_pass_after_grace(sandbox, fly):
    machine = fly.create_machine(PROD, config_for("1.3.0"), region=demo.REGION)
    assert machine.state == "created"
    assert machine.metadata[CREATE_KEY]
    assert not machine.healthy
    fly.wait_for_state(PROD, machine.id, "started", instance_id=machine.instance_id)
    booted = fly.get_machine(PROD, machine.id)
    assert booted.state == "started"
    assert {c.status for c in booted.checks} == {"critical"}  # inside the 10 s grace period
    sandbox.advance(10)
    assert fly.get_machine(PROD, machine.id).healthy


def test_update_replaces_config_restarts_and_changes_instance(sandbox, fly):
    machine = fly.list_machines(PROD)[0]
    config = {**machine.config, "image": NEXT.image_ref}
    updated = fly.update_machine(PROD, machine.id, config, current_version=machine.instance_id)
    assert updated.instance_id != machine.instance_id
    assert updated.state == "replacing"
    assert updated.image_ref.digest == NEXT.image_digest
    fly.wait_for_state(PROD, machine.id, "started")
    sandbox.advance(10)
    assert fly.get_machine(PROD, machine.id).healthy
    with pytest.raises(PermanentAPIError) as caught:  # stale current_version
        fly.update_machine(PROD, machine.id, config, current_version=machine.instance_id)
    assert caught.value.status == 412


def test_stop_start_suspend_delete(fly):
    machine = fly.list_machines(PROD)[0]
    fly.stop_machine(PROD, machine.id, signal="SIGTERM", timeout="10s")
    fly.wait_for_state(PROD, machine.id, "stopped")
    assert fly.start_machine(PROD, machine.id) == "stopped"
    fly.wait_for_state(PROD, machine.id, "started")
    fly.suspend_machine(PROD, machine.id)
    fly.wait_for_state(PROD, machine.id, "suspended")
    assert fly.start_machine(PROD, machine.id) == "suspended"
    with pytest.raises(PermanentAPIError) as caught:  # running machines need force
        fly.delete_machine(PROD, machine.id)
    assert caught.value.status == 412
    fly.delete_machine(PROD, machine.id, force=True)
    fly.wait_for_state(PROD, machine.id, "destroyed")
    fly.delete_machine(PROD, machine.id)  # already destroyed: fine
    assert machine.id not in {m.id for m in fly.list_machines(PROD)}
    assert machine.id in {m.id for m in fly.list_machines(PROD, include_deleted=True)}


def test_wait_loops_on_408_until_its_deadline(sandbox, fly):
    machine = fly.list_machines(PROD)[0]
    fly.stop_machine(PROD, machine.id)
    fly.wait_for_state(PROD, machine.id, "stopped")
    sandbox.requests.clear()
    with pytest.raises(RetryableAPIError) as caught:
        fly.wait_for_state(PROD, machine.id, "started", timeout=120)
    assert caught.value.status == 408
    assert [c.status for c in sandbox.calls("GET", r".*/wait")] == [408, 408]


def test_wait_rides_out_a_503(sandbox, fly, sleeps):
    machine = fly.create_machine(PROD, config_for("1.3.0"))
    sandbox.add_fault("status", service="fly", path="/wait$", status=503, times=1)
    fly.wait_for_state(PROD, machine.id, "started")
    assert len(sleeps) == 1


def test_wait_leaves_a_long_429_to_the_caller(sandbox, fly, sleeps):
    machine = fly.create_machine(PROD, config_for("1.3.0"))
    sandbox.add_fault("rate_limit", service="fly", path="/wait$", retry_after=30, times=1)
    with pytest.raises(RetryableAPIError) as caught:
        fly.wait_for_state(PROD, machine.id, "started", timeout=120)
    assert (caught.value.status, caught.value.retry_after) == (429, 30)
    assert "Fly rate-limited until" in str(caught.value)
    assert sleeps == []  # longer than the client sleeps through (HTTP_MAX_SERVER_WAIT_SECONDS)


def test_leases_guard_mutations(fly):
    machine = fly.list_machines(PROD)[0]
    lease = fly.acquire_lease(PROD, machine.id, ttl=30, description="deploy 7")
    assert lease.nonce and lease.description.startswith("deploy 7")
    assert fly.get_lease(PROD, machine.id) == lease
    with pytest.raises(PermanentAPIError) as caught:
        fly.acquire_lease(PROD, machine.id)
    assert caught.value.status == 409
    config = {**machine.config, "image": NEXT.image_ref}
    with pytest.raises(PermanentAPIError) as caught:
        fly.update_machine(PROD, machine.id, config)
    assert caught.value.status == 409
    assert fly.refresh_lease(PROD, machine.id, lease.nonce, ttl=60).nonce == lease.nonce
    fly.update_machine(PROD, machine.id, config, nonce=lease.nonce)
    fly.release_lease(PROD, machine.id, lease.nonce)
    assert fly.get_lease(PROD, machine.id) is None
    fly.release_lease(PROD, machine.id, lease.nonce)  # already released: fine


def test_lease_expires_after_ttl(sandbox, fly):
    machine = fly.list_machines(PROD)[0]
    fly.acquire_lease(PROD, machine.id, ttl=5)
    sandbox.advance(6)
    assert fly.get_lease(PROD, machine.id) is None
    assert fly.acquire_lease(PROD, machine.id).nonce


@pytest.mark.parametrize(
    "breakage",
    ["tag", "label", "metadata", "control"],
)
def test_broken_images_never_pass_checks(sandbox, fly, breakage):
    config = config_for("1.3.0")
    if breakage == "tag":
        config["image"] = "registry.fly.io/hot-dash:v1.3.1-broken"
    elif breakage == "label":
        sandbox.publish_release("1.4.0", healthy=False)
        config["image"] = "registry.fly.io/hot-dash:v1.4.0"
    elif breakage == "metadata":
        config["metadata"][demo.BROKEN_IMAGE_LABEL] = "fail"
    else:
        sandbox.mark_image(config["image"], healthy=False)
    machine = fly.create_machine(PROD, config)
    fly.wait_for_state(PROD, machine.id, "started")
    sandbox.advance(600)
    checks = fly.get_machine(PROD, machine.id).checks
    assert checks and {c.status for c in checks} == {"critical"}


def test_fail_next_images_breaks_exactly_that_many(sandbox, fly):
    sandbox.fail_next_images(1)
    broken = fly.create_machine(PROD, config_for("1.3.0"))
    fine = fly.create_machine(PROD, config_for("1.3.0-rc.1"))
    sandbox.advance(30)
    assert not fly.get_machine(PROD, broken.id).healthy
    assert fly.get_machine(PROD, fine.id).healthy


@pytest.mark.parametrize("kind", ["lose", "drop"])
def test_lost_response_on_create_does_not_create_a_second_machine(sandbox, fly, sleeps, kind):
    sandbox.add_fault(
        kind, service="fly", method="POST", path=r"^/apps/hot-dash/machines$", times=1
    )
    machine = fly.create_machine(PROD, config_for("1.3.0"))
    machines = fly.list_machines(PROD)
    assert len(machines) == 3
    assert machine.id in {m.id for m in machines}
    assert len(sandbox.calls("POST", "/apps/hot-dash/machines")) == 1
    lookups = sandbox.calls("GET", "/apps/hot-dash/machines")
    assert lookups[0].query == {f"metadata.{CREATE_KEY}": [machine.metadata[CREATE_KEY]]}


def test_create_is_retried_when_the_failure_left_nothing(sandbox, fly):
    sandbox.add_fault("status", service="fly", method="POST", path="/machines$", times=1)
    fly.create_machine(PROD, config_for("1.3.0"))
    assert len(fly.list_machines(PROD)) == 3
    assert [c.status for c in sandbox.calls("POST", "/apps/hot-dash/machines")] == [503, 200]


def test_lost_update_response_is_reconciled(sandbox, fly):
    machine = fly.list_machines(PROD)[0]
    sandbox.add_fault("lose", service="fly", method="POST", path=f"/{machine.id}$", times=1)
    config = {**machine.config, "image": NEXT.image_ref}
    updated = fly.update_machine(PROD, machine.id, config, current_version=machine.instance_id)
    assert updated.image == NEXT.image_ref
    assert len(sandbox.calls("POST", f"/apps/hot-dash/machines/{machine.id}")) == 1


def test_lost_lease_response_is_reconciled(sandbox, fly):
    machine = fly.list_machines(PROD)[0]
    sandbox.add_fault("lose", service="fly", method="POST", path="/lease$", times=1)
    lease = fly.acquire_lease(PROD, machine.id)
    assert fly.get_lease(PROD, machine.id) == lease


def test_secrets_names_and_digests_only(sandbox, fly):
    secrets = fly.list_secrets(PROD)
    assert {s.name for s in secrets} == {"SECRET_KEY", "DATABASE_URL"}
    assert all(s.digest for s in secrets)
    age = sandbox.clock.now() - secrets[0].created_at.timestamp()
    assert round(age / 86400) == demo.FLY_SECRET_AGE_DAYS
    version = fly.set_secrets(PROD, {"SENTRY_DSN": "https://x", "DATABASE_URL": None})
    assert version == 2
    assert {s.name for s in fly.list_secrets(PROD)} == {"SECRET_KEY", "SENTRY_DSN"}
    assert "value" not in str(sandbox.calls("GET", "/apps/hot-dash/secrets")[0].query)


def test_secret_values_only_when_revealed(sandbox, fly):
    fly.set_secrets(PROD, {"SENTRY_DSN": "https://key@sentry.example/1"})
    plain_listing = fly.api.get_json("/apps/hot-dash/secrets")["secrets"]
    assert plain_listing and all("value" not in entry for entry in plain_listing)
    revealed = fly.reveal_secrets(PROD)
    assert set(revealed) == {"SECRET_KEY", "DATABASE_URL", "SENTRY_DSN"}
    assert revealed["SENTRY_DSN"] == "https://key@sentry.example/1"
    assert sandbox.calls("GET", "/apps/hot-dash/secrets")[-1].query == {"show_secrets": ["true"]}


def test_rate_limits_answer_429_when_switched_on(sandbox, make_fly, sleeps):
    def sleep(seconds: float) -> None:  # waiting lets the bucket refill
        sleeps.append(seconds)
        sandbox.advance(seconds)

    fly = make_fly(sleep=sleep)
    sandbox.set_rate_limits(True)
    machine = fly.list_machines(PROD)[0]
    for _ in range(3):  # burst of 3
        fly.start_machine(PROD, machine.id)
    fly.start_machine(PROD, machine.id)  # 429 with Retry-After, then retried
    assert sleeps == [1.0]
    assert [c.status for c in sandbox.calls("POST", r".*/start")] == [200, 200, 200, 429, 200]
