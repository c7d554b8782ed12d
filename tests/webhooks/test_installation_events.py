"""The GitHub App's ``installation`` and ``installation_repositories`` events, sent by the
sandbox through the real endpoint, keep the repositories HotDash can see; each change is
audited once."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent
from deployments.models import InstallationRepository, WebhookDelivery
from hotdash.sandbox import demo
from hotdash.sandbox.github_app import DEMO_INSTALLATION_ID

pytestmark = pytest.mark.django_db
DEMO_REPO = f"{demo.REPO_OWNER}/{demo.REPO_NAME}"


def visible() -> list[str]:
    return list(InstallationRepository.objects.values_list("full_name", flat=True))


def changes() -> list[dict]:
    return [e.data for e in AuditEvent.objects.filter(verb="installation.changed").order_by("id")]


def test_an_installation_created_lists_its_repositories(hooked_sandbox, process_deliveries):
    hooked_sandbox._activity(lambda: hooked_sandbox.github_app.announce("created"))
    processed = process_deliveries()

    assert [d.state for d in processed] == [WebhookDelivery.State.PROCESSED]
    assert visible() == [DEMO_REPO]
    row = InstallationRepository.objects.get()
    assert (row.installation_id, row.account) == (DEMO_INSTALLATION_ID, demo.REPO_OWNER)
    assert changes() == [
        {
            "action": "installation.created",
            "installation_id": DEMO_INSTALLATION_ID,
            "account": demo.REPO_OWNER,
            "added": [DEMO_REPO],
            "removed": [],
        }
    ]
    event = AuditEvent.objects.get(verb="installation.changed")
    assert event.actor_name == "github"


def test_repositories_added_and_removed_follow_the_installation(hooked_sandbox, process_deliveries):
    hooked_sandbox.change_installation_repositories(add=["hotdash-demo/api", "hotdash-demo/web"])
    process_deliveries()
    assert visible() == ["hotdash-demo/api", "hotdash-demo/web"]

    hooked_sandbox.change_installation_repositories(remove=["hotdash-demo/api"])
    process_deliveries()
    assert visible() == ["hotdash-demo/web"]
    assert [(c["added"], c["removed"]) for c in changes()] == [
        (["hotdash-demo/api", "hotdash-demo/web"], []),
        ([], ["hotdash-demo/api"]),
    ]


def test_an_uninstalled_app_sees_nothing_and_a_repeat_changes_nothing(
    hooked_sandbox, process_deliveries
):
    hooked_sandbox._activity(lambda: hooked_sandbox.github_app.announce("created"))
    process_deliveries()
    hooked_sandbox._activity(lambda: hooked_sandbox.github_app.announce("deleted"))
    process_deliveries()
    assert visible() == []
    assert changes()[-1]["removed"] == [DEMO_REPO]

    hooked_sandbox.github.outbox.append(("installation", _deleted_payload()))
    hooked_sandbox.github.deliver_outbox()
    (delivery,) = process_deliveries()
    assert delivery.state == WebhookDelivery.State.PROCESSED
    assert delivery.detail == "No change in the repositories the GitHub App can see"
    assert len(changes()) == 2


def _deleted_payload() -> dict:
    return {
        "action": "deleted",
        "installation": {"id": DEMO_INSTALLATION_ID, "account": {"login": demo.REPO_OWNER}},
        "repositories": [{"full_name": DEMO_REPO}],
        "sender": {"login": demo.REPO_OWNER},
    }


def test_a_suspended_installation_hides_its_repositories_until_unsuspended(
    hooked_sandbox, github_app, process_deliveries
):
    hooked_sandbox._activity(lambda: hooked_sandbox.github_app.announce("created"))
    hooked_sandbox._activity(lambda: hooked_sandbox.github_app.announce("suspend"))
    process_deliveries()
    assert visible() == []

    hooked_sandbox._activity(lambda: hooked_sandbox.github_app.announce("unsuspend"))
    process_deliveries()

    assert visible() == [DEMO_REPO]  # read again from GET /installation/repositories
    assert [c["action"] for c in changes()] == [
        "installation.created",
        "installation.suspend",
        "installation.unsuspend",
    ]
