"""Compliance fixtures: the demo app against the sandbox, swept as of the sandbox's clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deployments.engine.desired import declared_config, machine_config
from deployments.models import App, ComplianceRun, Notification
from deployments.services.compliance import compliance_sweep


def configure_as_declared(app: App, world) -> None:
    """Bring the sandbox machines of ``app`` to the config its environments declare (the
    demo's machines start drifted; the drift check is flipped on purpose where it is tested)."""
    for environment in app.environments.all():
        declared = declared_config(environment)
        for machine in list(world.fly.machines.values()):
            if machine.app == environment.fly_app_name:
                world.edit_machine(
                    machine.id,
                    machine_config(
                        declared, image=machine.config["image"], existing=machine.config
                    ),
                )


@pytest.fixture
def app(demo, sandbox):
    """The demo app, its notifications going to a webhook (queued: delivery is not tested here),
    its machines configured as declared."""
    demo.notification_webhook_url = "https://hooks.example/hotdash"
    demo.notification_webhook_secret = "compliance-test-signing-secret"
    demo.save()
    configure_as_declared(demo, sandbox)
    return demo


def sandbox_now(sandbox) -> datetime:
    return datetime.fromtimestamp(sandbox.clock.now(), tz=UTC)


@pytest.fixture
def sweep(app, sandbox):
    """Sweep the demo app as of the sandbox's clock; returns the run."""

    def run(target: App | None = None) -> ComplianceRun:
        [result] = compliance_sweep(apps=[target or app], now=sandbox_now(sandbox))
        return result

    return run


def statuses(run: ComplianceRun) -> dict[str, str]:
    return {check["key"]: check["status"] for check in run.checks}


def check(run: ComplianceRun, key: str) -> dict:
    return next(c for c in run.checks if c["key"] == key)


def notifications(since: int = 0) -> list[Notification]:
    """The app's webhook notifications (admins are e-mailed the same news: test_sweep.py)."""
    webhooks = Notification.objects.filter(pk__gt=since, channel=Notification.Channel.WEBHOOK)
    return list(webhooks.order_by("pk"))
