from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from approvals.models import AuditEvent
from deployments.models import App, Deploy, Environment, Release


def snapshot():
    return {
        "apps": list(App.objects.values()),
        "environments": list(Environment.objects.values()),
        "releases": list(Release.objects.order_by("id").values()),
        "deploys": list(Deploy.objects.order_by("id").values()),
        "audit": AuditEvent.objects.count(),
    }


def test_seed_demo_creates_the_demo_world(demo):
    production = demo.environments.get(name="production")
    staging = demo.environments.get(name="staging")
    assert (production.fly_app_name, production.region, production.machine_count) == (
        "hot-dash",
        "ord",
        2,
    )
    assert (
        production.machine_memory_mb,
        production.machine_cpus,
        production.max_unavailable_percent,
    ) == (2048, 2, 30)
    assert (production.health_tcp_interval_seconds, production.health_http_interval_seconds) == (
        15,
        30,
    )
    assert production.approvals_required == 1 and not production.allow_self_approval
    assert (staging.fly_app_name, staging.machine_count, staging.approvals_required) == (
        "hot-dash-staging",
        1,
        0,
    )
    releases = Release.objects.filter(app=demo)
    assert releases.count() == 7
    assert releases.filter(is_prerelease=True).count() == 1
    assert production.current_release.version == "1.2.0"
    assert Deploy.objects.filter(environment=production, state=Deploy.State.SUCCEEDED).count() == 4
    assert AuditEvent.objects.filter(verb="demo.seeded").count() == 1


def test_seed_demo_twice_changes_nothing(demo):
    before = snapshot()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert snapshot() == before
    assert "nothing changed" in out.getvalue()


def test_seed_demo_refuses_default_password_without_debug(db, settings):
    settings.DEBUG = False
    settings.DEMO_PASSWORD = ""
    with pytest.raises(CommandError, match="DEMO_PASSWORD"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not App.objects.exists()


def test_demo_users_log_in_with_demo_password(demo, client):
    assert client.login(username="alice", password="demo-password-for-tests")
