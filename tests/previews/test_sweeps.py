"""The orphan sweep, the maximum age, and the sleep state following the machines."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from approvals.models import AuditEvent
from deployments.models import Deploy, Preview
from deployments.services.previews import (
    preview_expire_due,
    preview_orphan_sweep,
    preview_state_refresh,
    preview_wake,
)
from hotdash.integrations import fly_client
from tests.previews.conftest import preview_deploys, preview_of


def test_orphan_sweep_destroys_only_preview_apps_without_an_open_pr(world, process_deliveries):
    open_pr = world.open_pull("feat: open", "still-open")["number"]
    closed_pr = world.open_pull("feat: closed", "closed-one")["number"]
    process_deliveries()
    # The closed PR's webhook never reached us: its app leaked.
    world.close_pull(closed_pr, merge=False)
    with fly_client() as fly:
        for name in ("hot-dash-pr-901", "other-app-pr-3", "hot-dash-pr-9x", "hot-dash-preview"):
            fly.create_app(name, "hotdash-demo")

    destroyed = preview_orphan_sweep()

    assert sorted(destroyed) == sorted([f"hot-dash-pr-{closed_pr}", "hot-dash-pr-901"])
    remaining = set(world.fly.apps)
    assert {f"hot-dash-pr-{open_pr}", "hot-dash", "hot-dash-staging"} <= remaining
    assert {"other-app-pr-3", "hot-dash-pr-9x", "hot-dash-preview"} <= remaining
    events = AuditEvent.objects.filter(verb="preview.orphan_destroyed").order_by("id")
    assert sorted(e.data["fly_app"] for e in events) == sorted(destroyed)
    assert preview_of(closed_pr).state == Preview.State.DESTROYED
    assert preview_of(open_pr).state == Preview.State.CREATING
    assert preview_orphan_sweep() == []


def test_previews_past_the_maximum_age_are_destroyed(world, process_deliveries):
    old = world.open_pull("feat: old", "old")["number"]
    young = world.open_pull("feat: young", "young")["number"]
    process_deliveries()
    Preview.objects.filter(pr_number=old).update(created_at=timezone.now() - timedelta(days=31))
    Preview.objects.filter(pr_number=young).update(created_at=timezone.now() - timedelta(days=29))

    assert preview_expire_due() == [f"hot-dash-pr-{old}"]
    assert preview_of(old).state == Preview.State.DESTROYED
    assert preview_of(young).state == Preview.State.CREATING
    assert f"hot-dash-pr-{old}" not in world.fly.apps
    event = AuditEvent.objects.get(verb="preview.expired")
    assert event.actor_name == "system" and "30 days" in event.data["reason"]


def test_state_follows_the_machines_and_wake_starts_them(
    world, driver, process_deliveries, requester
):
    number = world.open_pull("feat: sleepy", "sleepy")["number"]
    process_deliveries()
    [deploy] = preview_deploys(number)
    assert driver.run(deploy).state == Deploy.State.SUCCEEDED
    preview = preview_of(number)
    assert preview_state_refresh(preview=preview) == Preview.State.RUNNING
    fly_app = preview.environment.fly_app_name
    with fly_client() as fly:
        [machine] = fly.list_machines(fly_app)
        fly.stop_machine(fly_app, machine.id)
    driver.tick(30)
    assert preview_state_refresh(preview=preview) == Preview.State.SLEEPING

    assert preview_wake(preview=preview, user=requester) == 1
    driver.tick(30)
    with fly_client() as fly:
        assert [m.state for m in fly.list_machines(fly_app)] == ["started"]
    assert preview_of(number).state == Preview.State.RUNNING
    woken = AuditEvent.objects.get(verb="preview.woken")
    assert woken.actor_name == "requester" and woken.data["machines"] == [machine.id]
