"""The one pure function that builds a Fly machine's config from an environment's declared
machine configuration, and the drift comparison built on it. Table-driven; no database."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from deployments.engine.desired import (
    Check,
    DeclaredMachineConfig,
    declared_config,
    differences,
    duration_seconds,
    machine_config,
)
from deployments.models import Environment

IMAGE = "registry.fly.io/hot-dash:v1.3.0"
DECLARED = DeclaredMachineConfig(
    region="ord",
    cpu_kind="shared",
    cpus=2,
    memory_mb=2048,
    machine_count=2,
    min_machines_running=2,
    auto_stop="off",
    auto_start=True,
    internal_port=8080,
    concurrency_type="requests",
    soft_limit=200,
    hard_limit=250,
    http_check=Check(interval=30, timeout=5, grace=30, path="/health"),
    tcp_check=Check(interval=15, timeout=2, grace=25),
    kill_signal="SIGTERM",
    kill_timeout=30,
    restart_policy="on-failure",
    restart_max_retries=7,
    process_group="web",
    app_env="production",
)


def at(config: dict, path: str):
    node = config
    for part in path.replace("]", "").replace("[", ".").split("."):
        node = node[int(part)] if part.isdigit() else node[part]
    return node


# Every declared value, where it lands in the config of a new machine.
DECLARED_PATHS = [
    ("image", IMAGE),
    ("guest.cpu_kind", "shared"),
    ("guest.cpus", 2),
    ("guest.memory_mb", 2048),
    ("env.PRIMARY_REGION", "ord"),
    ("env.FLY_PROCESS_GROUP", "web"),
    ("env.APP_ENV", "production"),
    ("metadata.fly_process_group", "web"),
    ("metadata.hotdash_deploy", "9"),
    ("services[0].protocol", "tcp"),
    ("services[0].internal_port", 8080),
    ("services[0].autostop", "off"),
    ("services[0].autostart", True),
    ("services[0].min_machines_running", 2),
    ("services[0].concurrency", {"type": "requests", "soft_limit": 200, "hard_limit": 250}),
    ("services[0].ports[0]", {"port": 80, "handlers": ["http"], "force_https": True}),
    ("services[0].ports[1]", {"port": 443, "handlers": ["tls", "http"]}),
    (
        "checks.http",
        {
            "type": "http",
            "port": 8080,
            "method": "GET",
            "path": "/health",
            "interval": "30s",
            "timeout": "5s",
            "grace_period": "30s",
        },
    ),
    (
        "checks.tcp",
        {"type": "tcp", "port": 8080, "interval": "15s", "timeout": "2s", "grace_period": "25s"},
    ),
    ("restart", {"policy": "on-failure", "max_retries": 7}),
    ("stop_config", {"signal": "SIGTERM", "timeout": "30s"}),
]


@pytest.mark.parametrize(("path", "expected"), DECLARED_PATHS)
def test_every_declared_value_reaches_a_new_machine(path, expected):
    config = machine_config(DECLARED, image=IMAGE, metadata={"hotdash_deploy": "9"})
    assert at(config, path) == expected


def existing_machine() -> dict:
    """A machine launched by someone else: fields HotDash does not manage, and managed ones
    that differ from what is declared."""
    return {
        "image": "registry.fly.io/hot-dash:v1.2.0",
        "size": "shared-cpu-1x",
        "guest": {"cpu_kind": "performance", "cpus": 1, "memory_mb": 512, "kernel_args": ["x"]},
        "env": {"PRIMARY_REGION": "ams", "DATABASE_URL": "postgres://db", "APP_ENV": "other"},
        "mounts": [{"volume": "vol_123", "path": "/data", "name": "data"}],
        "files": [{"guest_path": "/etc/app.conf", "raw_value": "Zm9v"}],
        "init": {"cmd": ["node", "server.js"]},
        "metadata": {"fly_release_id": "rel_1", "owner": "ops", "fly_process_group": "app"},
        "services": [
            {
                "protocol": "tcp",
                "internal_port": 8080,
                "autostop": True,
                "autostart": False,
                "min_machines_running": 0,
                "ports": [{"port": 8443, "handlers": ["tls"]}],
                "checks": [{"type": "tcp", "interval": "60s"}],
            },
            {"protocol": "udp", "internal_port": 5353, "ports": [{"port": 53}]},
        ],
        "checks": {
            "http": {"type": "http", "port": 8080, "interval": "15s", "timeout": "5s"},
            "tcp": {"type": "tcp", "port": 8080, "interval": "30s", "timeout": "5s"},
            "metrics": {"type": "http", "port": 9091, "path": "/metrics", "interval": "1m"},
        },
        "restart": {"policy": "always"},
        "stop_config": {"signal": "SIGINT", "timeout": "5s"},
        "auto_destroy": False,
    }


# An existing machine keeps its own env and service ports (see KEPT).
MANAGED_PATHS = [
    (p, v) for p, v in DECLARED_PATHS if not p.startswith(("env.", "services[0].ports"))
]


@pytest.mark.parametrize(("path", "expected"), MANAGED_PATHS)
def test_every_declared_value_reaches_an_existing_machine(path, expected):
    config = machine_config(
        DECLARED, image=IMAGE, existing=existing_machine(), metadata={"hotdash_deploy": "9"}
    )
    assert at(config, path) == expected


KEPT = [
    "env",
    "mounts",
    "files",
    "init",
    "auto_destroy",
    "metadata.fly_release_id",
    "metadata.owner",
    "guest.kernel_args",
    "services[0].ports",
    "services[0].checks",
    "services[1]",
    "checks.metrics",
]


@pytest.mark.parametrize("path", KEPT)
def test_an_existing_machine_keeps_what_hotdash_does_not_manage(path):
    before = existing_machine()
    config = machine_config(DECLARED, image=IMAGE, existing=before, metadata={"x": "1"})
    assert at(config, path) == at(before, path)
    assert before == existing_machine()  # the input is never changed
    assert "size" not in config  # an explicit guest replaces a named size


def test_the_service_on_the_declared_port_is_the_managed_one():
    before = existing_machine()
    before["services"].reverse()
    config = machine_config(DECLARED, image=IMAGE, existing=before)
    assert config["services"][0] == before["services"][0]  # the UDP one, untouched
    assert config["services"][1]["concurrency"]["soft_limit"] == 200


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        ({"hard_limit": None}, "services[0].concurrency", {"type": "requests", "soft_limit": 200}),
        ({"restart_policy": "always"}, "restart", {"policy": "always"}),
        ({"restart_policy": "no"}, "restart", {"policy": "no"}),
        ({"auto_stop": "suspend", "min_machines_running": 0}, "services[0].autostop", "suspend"),
        ({"internal_port": 3000}, "checks.tcp.port", 3000),
    ],
)
def test_declared_variants(change, path, expected):
    assert at(machine_config(replace(DECLARED, **change), image=IMAGE), path) == expected


def in_sync() -> dict:
    return machine_config(DECLARED, image=IMAGE, existing=existing_machine())


@pytest.mark.parametrize(
    ("edit", "fields"),
    [
        (lambda c: c["guest"].update(memory_mb=4096), ["guest.memory_mb"]),
        (lambda c: c["checks"]["tcp"].update(interval="30s"), ["checks.tcp.interval"]),
        (
            lambda c: c["services"][0]["concurrency"].pop("hard_limit"),
            ["services[0].concurrency.hard_limit"],
        ),
        (lambda c: c.pop("stop_config"), ["stop_config"]),
        (lambda c: c["restart"].update(policy="always"), ["restart.policy"]),
        (lambda c: c["metadata"].pop("fly_process_group"), ["metadata.fly_process_group"]),
        # Not differences: the image, unmanaged fields, and the same value written another way.
        (lambda c: c.update(image="registry.fly.io/hot-dash:v9"), []),
        (lambda c: c["env"].update(NEW="1"), []),
        (lambda c: c["checks"]["tcp"].update(interval="15000ms", timeout=2_000_000_000), []),
        (lambda c: c["services"][0].update(autostop=False), []),
    ],
)
def test_differences_name_exactly_the_managed_values_that_differ(edit, fields):
    live = in_sync()
    edit(live)
    found = differences(DECLARED, live)
    assert [d.field for d in found] == fields
    for difference in found:
        assert difference.live != difference.declared


def test_a_drifted_machine_lists_declared_and_live_values():
    [difference] = differences(DECLARED, {**in_sync(), "guest": {**in_sync()["guest"], "cpus": 1}})
    assert difference.as_dict() == {"field": "guest.cpus", "declared": 2, "live": 1}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("15s", 15), ("1m30s", 90), ("500ms", 0.5), (2_000_000_000, 2), ("soon", None), (None, None)],
)
def test_durations(value, seconds):
    assert duration_seconds(value) == seconds


def test_declared_config_reads_an_environment_without_the_database():
    environment = Environment(
        kind="staging",
        region="ams",
        concurrency_hard_limit=None,
        health_http_path="/up",
        health_tcp_grace_seconds=7,
    )
    declared = declared_config(environment)
    assert (declared.region, declared.app_env, declared.hard_limit) == ("ams", "staging", None)
    assert declared.http_check.path == "/up" and declared.tcp_check.grace == 7
    # The model's defaults are Fly's documented ones.
    assert (declared.memory_mb, declared.auto_stop, declared.kill_signal) == (256, "off", "SIGINT")
    assert (declared.kill_timeout, declared.soft_limit, declared.internal_port) == (5, 20, 8080)
    assert copy.deepcopy(declared) == declared
