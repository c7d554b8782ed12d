"""Reading an app's fly.toml into an environment's declared machine configuration: the
real-world shapes, ignored keys, clear errors, and the import (page, apply, command) against
the sandbox's GitHub."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from approvals.models import AuditEvent
from deployments.fly_toml import FlyTomlError, parse
from deployments.models import Environment
from deployments.services.machine_config import fly_toml_apply, fly_toml_read
from hotdash.errors import Refused
from hotdash.sandbox import demo as demo_world

PRODUCTION = demo_world.fly_toml("fly.production.toml", "1.2.0")
STAGING = demo_world.fly_toml("fly.toml", "1.2.0")

# What flyctl launch writes for a multi-process app: top-level named checks, integer durations
# (milliseconds for checks, seconds for kill_timeout), the legacy auto-stop boolean, one [[vm]]
# per process group and a restart rule for another group.
LAUNCHED = """
app = "shop"
primary_region = "ams"
kill_signal = "SIGTERM"
kill_timeout = 12
swap_size_mb = 512

[processes]
  web = "bin/web"
  worker = "bin/worker"

[[services]]
  internal_port = 3000
  protocol = "tcp"
  processes = ["web"]
  auto_stop_machines = true
  auto_start_machines = true
  min_machines_running = 1

  [[services.ports]]
    port = 443
    handlers = ["tls", "http"]

  [services.concurrency]
    type = "connections"
    hard_limit = 25
    soft_limit = 20

[checks]
  [checks.alive]
    type = "tcp"
    port = 3000
    interval = 10000
    timeout = 1500
    grace_period = "5s"
  [checks.health]
    type = "http"
    port = 3000
    path = "/up"
    method = "POST"
    interval = "20s"
    timeout = "4s"
    grace_period = "1m"

[[vm]]
  processes = ["worker"]
  size = "performance-2x"

[[vm]]
  processes = ["web"]
  memory = 1024
  cpus = 1

[[restart]]
  policy = "always"
  processes = ["worker"]

[[restart]]
  policy = "never"
  processes = ["web"]

[deploy]
  strategy = "bluegreen"
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PRODUCTION,
            {
                "region": "ord",
                "kill_signal": "SIGINT",
                "kill_timeout_seconds": 30,
                "process_group": "app",
                "internal_port": 8080,
                "auto_stop_machines": "off",
                "auto_start_machines": True,
                "min_machines_running": 2,
                "concurrency_type": "requests",
                "concurrency_soft_limit": 200,
                "concurrency_hard_limit": 250,
                "health_http_path": "/health",
                "health_http_interval_seconds": 30,
                "health_http_timeout_seconds": 5,
                "health_http_grace_seconds": 30,
                "health_tcp_interval_seconds": 15,
                "health_tcp_timeout_seconds": 2,
                "health_tcp_grace_seconds": 30,
                "machine_cpu_kind": "shared",
                "machine_cpus": 2,
                "machine_memory_mb": 2048,
                "rollout_strategy": "rolling",
                "max_unavailable_percent": 30,
                "restart_policy": "on-failure",
                "restart_max_retries": 10,
            },
        ),
        (
            STAGING,
            {
                "region": "ord",
                "kill_timeout_seconds": 30,
                "process_group": "app",
                "internal_port": 8080,
                "auto_stop_machines": "stop",
                "auto_start_machines": True,
                "min_machines_running": 0,
                "concurrency_type": "requests",
                "concurrency_soft_limit": 80,
                "concurrency_hard_limit": 100,
                "health_http_path": "/health",
                "health_http_interval_seconds": 30,
                "health_http_timeout_seconds": 5,
                "health_http_grace_seconds": 20,
                "machine_cpu_kind": "shared",
                "machine_cpus": 2,
                "machine_memory_mb": 2048,
            },
        ),
        (
            LAUNCHED,
            {
                "region": "ams",
                "kill_signal": "SIGTERM",
                "kill_timeout_seconds": 12,
                "process_group": "web",
                "internal_port": 3000,
                "auto_stop_machines": "stop",
                "auto_start_machines": True,
                "min_machines_running": 1,
                "concurrency_type": "connections",
                "concurrency_soft_limit": 20,
                "concurrency_hard_limit": 25,
                "health_tcp_interval_seconds": 10,
                "health_tcp_timeout_seconds": 2,
                "health_tcp_grace_seconds": 5,
                "health_http_path": "/up",
                "health_http_interval_seconds": 20,
                "health_http_timeout_seconds": 4,
                "health_http_grace_seconds": 60,
                "machine_cpus": 1,
                "machine_memory_mb": 1024,
                "restart_policy": "no",
            },
        ),
    ],
    ids=["services", "http_service", "launched"],
)
def test_real_world_shapes_parse_into_the_declared_config(text, expected):
    assert parse(text).values == expected


@pytest.mark.parametrize(
    ("text", "ignored"),
    [
        (
            PRODUCTION,
            [
                "console_command",
                "build",
                "deploy.release_command",
                "env",
                "services[0].ports",
                "statics",
            ],
        ),
        (STAGING, ["env", "http_service.force_https"]),
        (
            LAUNCHED,
            [
                "swap_size_mb",
                "processes.worker",
                "services[0].ports",
                "checks.health.method",
                "vm[0]",
                "restart[0]",
                "deploy",
            ],
        ),
    ],
    ids=["services", "http_service", "launched"],
)
def test_keys_hotdash_does_not_model_are_listed_never_dropped(text, ignored):
    assert parse(text).ignored == ignored


def test_how_values_were_read_is_noted():
    notes = parse(LAUNCHED).notes
    assert "checks.alive.timeout: 1.5 s rounded up to 2 s." in notes
    assert any(n.startswith("deploy.strategy: HotDash rolls out in batches only") for n in notes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('app = "x"\n[http_service\n', "not valid TOML"),
        ("kill_timeout = true", "kill_timeout: expected text or a number, found True"),
        ('[http_service]\ninternal_port = "8080"', "http_service.internal_port: expected a number"),
        ('[[vm]]\nmemory = "lots"', "vm[0].memory: 'lots' is not a memory size"),
        ('[[vm]]\nsize = "huge-cpu-9x"', "vm[0].size: unknown size"),
        ('[[http_service.checks]]\ninterval = "often"', "is not a duration"),
        ("[services]\ninternal_port = 1", "services: expected an array of tables"),
        ('[[restart]]\npolicy = "sometimes"', "unknown restart policy"),
    ],
)
def test_an_unreadable_file_is_a_clear_error(text, message):
    with pytest.raises(FlyTomlError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(text)


# --- the import against the sandbox's GitHub -------------------------------------------------


@pytest.fixture
def production(demo, sandbox):
    return demo.environments.get(name="production")


def test_the_seeded_environments_declare_what_their_fly_toml_does(demo, sandbox):
    for name, path in (("production", "fly.production.toml"), ("staging", "fly.toml")):
        environment = demo.environments.get(name=name)
        read = fly_toml_read(environment=environment, release=environment.current_release)
        assert read.path == path
        assert read.changes == [], name


def test_the_import_shows_a_diff_and_an_admin_applies_it_audited(
    production, client, admin_user, demo
):
    release = demo.releases.get(version="1.3.0")
    client.force_login(admin_user)
    page = client.get(
        reverse("deployments:environment-fly-toml", args=[production.pk]),
        {"release": release.pk},
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "fly.production.toml" in html and "would change 1 declared value" in html
    assert ">2048<" in html and ">4096<" in html
    assert "services[0].ports" in html  # ignored keys are shown
    read = page.context["read"]
    assert [(c.field, c.current, c.proposed) for c in read.changes] == [
        ("machine_memory_mb", 2048, 4096)
    ]

    answer = client.post(
        reverse("deployments:environment-fly-toml-apply", args=[production.pk]),
        {"release": release.pk, "blob_sha": read.blob_sha},
    )
    assert answer.status_code == 302
    production.refresh_from_db()
    assert production.machine_memory_mb == 4096
    event = AuditEvent.objects.get(verb="environment.config_imported")
    assert event.actor_name == admin_user.username
    assert event.data["changes"] == {"machine_memory_mb": [2048, 4096]}
    assert event.data["commit_sha"] == release.commit_sha
    assert event.data["blob_sha"] == read.blob_sha and event.data["ref"] == "v1.3.0"
    assert "env" in event.data["ignored"]
    # Applying again changes nothing and records nothing.
    fly_toml_apply(environment=production, release=release, actor=admin_user)
    assert AuditEvent.objects.filter(verb="environment.config_imported").count() == 1


def test_only_admins_read_or_apply(production, client, approver, demo):
    client.force_login(approver)
    url = reverse("deployments:environment-fly-toml", args=[production.pk])
    assert client.get(url).status_code == 403
    apply = reverse("deployments:environment-fly-toml-apply", args=[production.pk])
    assert client.post(apply, {"release": production.current_release_id}).status_code == 403
    with pytest.raises(Refused) as refused:
        fly_toml_apply(environment=production, release=production.current_release, actor=approver)
    assert refused.value.code == "forbidden"


def test_a_file_changed_since_it_was_reviewed_is_not_applied(production, admin_user, demo):
    with pytest.raises(Refused) as refused:
        fly_toml_apply(
            environment=production,
            release=demo.releases.get(version="1.3.0"),
            actor=admin_user,
            reviewed_blob_sha="0" * 40,
        )
    assert refused.value.code == "fly_toml_changed"
    production.refresh_from_db()
    assert production.machine_memory_mb == 2048


def test_an_unparsable_file_in_the_repository_is_a_clear_error(
    production, client, admin_user, monkeypatch
):
    monkeypatch.setattr(demo_world, "fly_toml", lambda path, version: "[[vm]\nmemory=1")
    with pytest.raises(Refused) as refused:
        fly_toml_read(environment=production, release=production.current_release)
    assert refused.value.code == "fly_toml_invalid"
    assert refused.value.message.startswith(
        "fly.production.toml at v1.2.0 cannot be read: not valid TOML"
    )
    client.force_login(admin_user)
    page = client.get(reverse("deployments:environment-fly-toml", args=[production.pk]))
    assert "cannot be read: not valid TOML" in page.content.decode()


def test_declared_values_that_fail_validation_are_refused(production, admin_user, monkeypatch):
    text = PRODUCTION.replace("soft_limit = 200", "soft_limit = 300")
    monkeypatch.setattr(demo_world, "fly_toml", lambda path, version: text)
    with pytest.raises(Refused) as refused:
        fly_toml_apply(environment=production, release=production.current_release, actor=admin_user)
    assert refused.value.code == "invalid_config"
    assert "soft concurrency limit cannot be above the hard limit" in refused.value.message
    production.refresh_from_db()
    assert production.concurrency_soft_limit == 200


def test_the_command_prints_the_diff_and_applies_it(production, admin_user, demo):
    out = io.StringIO()
    call_command("import_fly_toml", "hot-dash", "production", "--ref", "v1.3.0", stdout=out)
    text = out.getvalue()
    assert "fly.production.toml at v1.3.0" in text
    assert "machine_memory_mb: 2048 -> 4096" in text
    assert "ignored (not modelled): services[0].ports" in text
    assert "Not applied" in text
    assert Environment.objects.get(pk=production.pk).machine_memory_mb == 2048

    out = io.StringIO()
    call_command(
        "import_fly_toml",
        "hot-dash",
        "production",
        "--ref",
        "1.3.0",
        "--apply",
        "--as",
        admin_user.username,
        stdout=out,
    )
    assert "Applied 1 change(s)." in out.getvalue()
    assert Environment.objects.get(pk=production.pk).machine_memory_mb == 4096
    with pytest.raises(CommandError, match="no release"):
        call_command("import_fly_toml", "hot-dash", "production", "--ref", "v9.9.9")


@pytest.mark.parametrize("release", ["abc", "-1", "99999999999999999999999", "0"])
def test_a_bad_release_is_not_found(production, client, admin_user, release):
    client.force_login(admin_user)
    url = reverse("deployments:environment-fly-toml", args=[production.pk])
    assert client.get(url, {"release": release}).status_code == 404
