"""Machines configured exactly as the environment declares, drift made visible, and reconcile:
the proof against the sandbox (deploys run in-process, the sandbox over HTTP)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from approvals.models import AuditEvent
from approvals.services import approval_decide
from deployments.models import Deploy, Environment
from deployments.services.drift import drift_check_all
from deployments.services.machine_config import config_reconcile_request
from deployments.tasks.drift import drift_sweep
from hotdash.errors import Refused
from hotdash.integrations.sandbox_control import sandbox_control
from tests.engine.conftest import fast_health, make_deploy

UPDATE = r"/apps/{app}/machines/[0-9a-f]+"
UNMANAGED = {
    "env": {"PRIMARY_REGION": "ord", "DATABASE_URL": "postgres://primary/hot"},
    "mounts": [{"volume": "vol_data", "path": "/data", "name": "data"}],
    "files": [{"guest_path": "/etc/hot.conf", "raw_value": "aG90"}],
}


def live_configs(sandbox, app: str) -> dict[str, dict]:
    fly = sandbox.world.fly
    return {
        m.id: m.config
        for m in fly.machines.values()
        if m.app == app and m.state(sandbox.clock.now()) != "destroyed"
    }


def updates(sandbox, app: str) -> list[str]:
    calls = sandbox.calls("POST", UPDATE.format(app=app), service="fly")
    return [call.path.rsplit("/", 1)[1] for call in calls]


def verbs(verb: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb=verb).order_by("id"))


@pytest.fixture
def production(demo, sandbox):
    """Production with short check timings, each check's different from the other's."""
    environment = fast_health(demo.environments.get(name="production"))
    environment.health_tcp_interval_seconds, environment.health_tcp_timeout_seconds = 3, 1
    environment.health_http_interval_seconds, environment.health_http_timeout_seconds = 2, 2
    environment.save()
    return environment


def deploy_130(environment, release, requester, driver) -> Deploy:
    deploy = driver.run(make_deploy(environment, release, requested_by=requester))
    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    return deploy


def test_after_a_production_deploy_every_machine_is_configured_as_declared(
    production, release_130, requester, sandbox, driver
):
    for machine in sandbox.world.fly.machines.values():
        if machine.app == "hot-dash":
            machine.config = {**machine.config, **UNMANAGED}
            machine.config["metadata"] = {**machine.config["metadata"], "team": "payments"}

    deploy_130(production, release_130, requester, driver)

    configs = live_configs(sandbox, "hot-dash")
    assert len(configs) == 2
    for config in configs.values():
        checks = config["checks"]
        assert (checks["tcp"]["type"], checks["tcp"]["interval"], checks["tcp"]["timeout"]) == (
            "tcp",
            "3s",
            "1s",
        )
        http = checks["http"]
        assert (http["type"], http["path"], http["interval"], http["timeout"]) == (
            "http",
            "/health",
            "2s",
            "2s",
        )
        [service] = config["services"]
        assert service["concurrency"] == {"type": "requests", "soft_limit": 200, "hard_limit": 250}
        assert (service["autostop"], service["min_machines_running"]) == ("off", 2)
        assert config["stop_config"] == {"signal": "SIGINT", "timeout": "30s"}
        assert config["restart"] == {"policy": "on-failure", "max_retries": 10}
        assert config["guest"] == {"cpu_kind": "shared", "cpus": 2, "memory_mb": 2048}
        # What HotDash does not manage is kept.
        for key, value in UNMANAGED.items():
            assert config[key] == value
        assert config["metadata"]["team"] == "payments"
        assert config["metadata"]["hotdash_version"] == "1.2.0"  # another writer's key
        assert config["image"] == release_130.image_ref
    staging = production.app.environments.get(name="staging")
    assert drift_check_all() == [staging.pk]  # still as the demo's older config launched it
    production.refresh_from_db()
    assert production.drift == {} and production.drift_checked_at is not None


def test_a_staging_machine_created_by_hotdash_auto_stops(
    demo, sandbox, release_130, requester, driver
):
    staging = fast_health(demo.environments.get(name="staging"))
    staging.machine_count = 2
    staging.save()

    deploy_130(staging, release_130, requester, driver)

    created = [
        c
        for c in live_configs(sandbox, "hot-dash-staging").values()
        if "hotdash_deploy" in (c["metadata"]) and "hotdash_version" not in c["metadata"]
    ]
    assert len(created) == 1
    [service] = created[0]["services"]
    assert (service["autostop"], service["autostart"], service["min_machines_running"]) == (
        "stop",
        True,
        0,
    )
    assert service["concurrency"] == {"type": "requests", "soft_limit": 80, "hard_limit": 100}
    assert created[0]["env"] == {
        "PRIMARY_REGION": "ord",
        "FLY_PROCESS_GROUP": "app",
        "APP_ENV": "staging",
    }


def test_a_hand_change_is_drift_within_one_sweep_and_reconcile_undoes_it(
    production, release_130, requester, approver, admin_user, sandbox, driver, client
):
    deploy_130(production, release_130, requester, driver)
    drift_check_all()
    detected_before = len(verbs("environment.drift_detected"))
    first, second = sorted(live_configs(sandbox, "hot-dash"))
    control = sandbox_control()
    control.edit_machine(machine_id=first, config={"guest": {"memory_mb": 4096}})
    control.edit_machine(machine_id=second, config={"checks": {"tcp": {"interval": "60s"}}})

    assert drift_check_all() == [production.pk]
    production.refresh_from_db()
    assert production.drifted
    assert production.drift == {
        first: [{"field": "guest.memory_mb", "declared": 2048, "live": 4096}],
        second: [{"field": "checks.tcp.interval", "declared": "3s", "live": "60s"}],
    }
    assert drift_check_all() == []  # unchanged: recorded and audited once
    detected = verbs("environment.drift_detected")[detected_before:]
    assert [e.data["machines"] for e in detected] == [
        {first: ["guest.memory_mb"], second: ["checks.tcp.interval"]}
    ]

    client.force_login(admin_user)
    machines = client.get(reverse("deployments:environment-machines", args=[production.pk]))
    html = machines.content.decode()
    assert f'id="drift-{first}"' in html and f'id="drift-{second}"' in html
    assert "guest.memory_mb" in html and ">4096<" in html and ">60s<" in html
    assert html.count('class="state state-drifted"') == 2
    overview = client.get(reverse("overview")).content.decode()
    row = overview.split(f'id="environment-{production.pk}"')[1].split("</tr>")[0]
    assert "state-drifted" in row

    sandbox.world.requests.clear()
    deploy = config_reconcile_request(
        environment=production, actor=admin_user, reason="undo hand edits"
    )
    assert deploy.kind == Deploy.Kind.RECONCILE
    assert deploy.state == Deploy.State.AWAITING_APPROVAL  # production needs an approval
    assert deploy.image_ref == release_130.image_ref
    approval_decide(request=deploy.approval_request, user=approver, verdict="approve")
    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    assert sorted(updates(sandbox, "hot-dash")) == [first, second]  # one update per machine
    configs = live_configs(sandbox, "hot-dash")
    assert configs[first]["guest"]["memory_mb"] == 2048
    assert configs[second]["checks"]["tcp"]["interval"] == "3s"
    assert {c["image"] for c in configs.values()} == {release_130.image_ref}
    requested = AuditEvent.objects.get(verb="deploy.requested", target_id=str(deploy.pk))
    assert requested.data["kind"] == "reconcile" and requested.data["reason"] == "undo hand edits"
    assert drift_check_all() == [production.pk]
    production.refresh_from_db()
    assert not production.drifted
    assert verbs("environment.drift_cleared")[-1].data["previously_drifted"] == sorted(
        [first, second]
    )


def test_reconcile_never_changes_an_image(
    production, release_130, approver, admin_user, sandbox, driver
):
    """Machines that run different images each keep their own."""
    first, second = sorted(live_configs(sandbox, "hot-dash"))
    sandbox.world.fly.machines[first].config["image"] = release_130.image_ref
    deploy = config_reconcile_request(environment=production, actor=admin_user, reason="align")
    approval_decide(request=deploy.approval_request, user=approver, verdict="approve")
    deploy = driver.run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    configs = live_configs(sandbox, "hot-dash")
    assert configs[first]["image"] == release_130.image_ref
    assert configs[second]["image"] == production.current_release.image_ref
    assert configs[first]["stop_config"]["timeout"] == configs[second]["stop_config"]["timeout"]


def test_reconcile_is_for_admins_with_a_reason(production, approver, admin_user, client):
    with pytest.raises(Refused) as refused:
        config_reconcile_request(environment=production, actor=approver, reason="tidy")
    assert refused.value.code == "forbidden"
    with pytest.raises(Refused) as refused:
        config_reconcile_request(environment=production, actor=admin_user, reason="  ")
    assert refused.value.code == "reason_required"
    client.force_login(approver)
    url = reverse("deployments:environment-reconcile", args=[production.pk])
    assert client.post(url, {"reason": "tidy"}).status_code == 403
    assert not Deploy.objects.filter(kind=Deploy.Kind.RECONCILE).exists()


def test_a_fly_error_is_kept_without_touching_the_last_result(production, sandbox):
    drift_check_all()
    production.refresh_from_db()
    before = production.drift
    sandbox.add_fault(
        "status", service="fly", method="GET", path="/apps/hot-dash/machines$", status=500
    )
    drift_check_all()
    production.refresh_from_db()
    assert production.drift == before
    assert production.drift_error.startswith("Could not ask Fly")


def test_the_environment_page_shows_the_declared_config(demo, client, admin_user, viewer):
    production = demo.environments.get(name="production")
    url = reverse("deployments:environment-detail", args=[production.pk])
    client.force_login(viewer)
    html = client.get(url).content.decode()
    section = html.split('id="declared-config"')[1].split("</section>")[0]
    for text in (
        "2 × shared CPU, 2048 MB",
        "2, at least 2 running; auto stop off",
        "soft 200, hard 250",
        "every 30 s, timeout 5 s, grace 30 s",
        "every 15 s, timeout 2 s, grace 30 s",
        "SIGINT, then killed after 30 s",
        "On failure, at most 10 times",
    ):
        assert text in section, text
    assert "Read from fly.toml" not in section and "Reconcile" not in section
    client.force_login(admin_user)
    section = client.get(url).content.decode().split('id="declared-config"')[1]
    assert "Read from fly.toml" in section and "Reconcile machines" in section
    assert Environment.objects.get(pk=production.pk).drift_checked_at is None
    assert "config not checked yet" in html


def test_beat_checks_drift_every_15_minutes(settings, production):
    entry = settings.CELERY_BEAT_SCHEDULE["drift-sweep"]
    assert (entry["task"], entry["schedule"]) == ("deployments.tasks.drift.drift_sweep", 900.0)
    drift_sweep.apply()
    production.refresh_from_db()
    assert production.drift_checked_at is not None
