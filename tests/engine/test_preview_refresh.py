"""A preview learns at once that its deploy ended: the engine sends its refresh on commit."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent
from deployments import task_names
from deployments.models import Deploy, Preview
from deployments.tasks import github_reports  # noqa: F401 - registers the outbox task run eagerly here
from hotdash.celery import app as celery_app
from tests.engine.conftest import fast_health, make_deploy
from tests.fixtures.messages import record_messages
from tests.previews import conftest as previews
from tests.previews.conftest import preview_deploys, preview_of

# The preview tests' world: the sandbox delivering PR webhooks to us, and its driver.
world = previews.world
driver = previews.driver
hooked_sandbox = previews.hooked_sandbox
post_delivery = previews.post_delivery
process_deliveries = previews.process_deliveries


@pytest.fixture
def eager_tasks():
    """Run tasks published from here in-process (the callbacks under test publish them)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def opened_preview(world, process_deliveries) -> tuple[Preview, Deploy]:
    number = world.open_pull("feat: dark mode", "dark-mode")["number"]
    process_deliveries()
    [deploy] = preview_deploys(number)
    return preview_of(number), deploy


@pytest.mark.parametrize(
    ("healthy", "outcome", "verb"),
    [
        (True, Preview.State.RUNNING, "preview.deployed"),
        (False, Preview.State.FAILED, "preview.failed"),
    ],
)
def test_a_preview_follows_its_deploy_as_soon_as_it_ends(
    world,
    driver,
    process_deliveries,
    django_capture_on_commit_callbacks,
    eager_tasks,
    healthy,
    outcome,
    verb,
):
    preview, deploy = opened_preview(world, process_deliveries)
    if not healthy:
        world.mark_image(deploy.image_ref, healthy=False)

    with django_capture_on_commit_callbacks() as callbacks:
        deploy = driver.run(deploy)
    assert deploy.state == (Deploy.State.SUCCEEDED if healthy else Deploy.State.FAILED)
    preview.refresh_from_db()
    assert preview.state == Preview.State.CREATING  # nothing told it yet
    for callback in callbacks:  # the deploy's end (and the GitHub outbox, already delivered)
        callback()

    preview.refresh_from_db()
    assert preview.state == outcome
    assert AuditEvent.objects.filter(verb=verb, target_id=str(preview.pk)).count() == 1


def test_a_deploy_that_is_not_a_preview_schedules_no_refresh(
    demo,
    world,
    driver,
    process_deliveries,
    requester,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    opened_preview(world, process_deliveries)  # a preview exists, but not for this deploy
    production = fast_health(demo.environments.get(name="production"))
    deploy = make_deploy(production, demo.releases.get(version="1.3.0"), requested_by=requester)

    with django_capture_on_commit_callbacks() as callbacks:
        assert driver.run(deploy).state == Deploy.State.SUCCEEDED
    refreshes = record_messages(monkeypatch, task_names.PREVIEW_REFRESH)
    record_messages(monkeypatch, task_names.GITHUB_REPORTS_DELIVER)  # the outbox's, not here
    for callback in callbacks:
        callback()
    assert refreshes == []
