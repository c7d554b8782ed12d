"""A real browser (Playwright driving Debian's chromium) against the live app, a real Celery
worker and the live sandbox: request → approve in the drawer → the page follows the deploy to
succeeded; rejecting works; the requester sees no approve button."""

from __future__ import annotations

import pytest

from deployments.models import Deploy
from tests.engine.conftest import fast_health
from tests.engine.test_workers import run_sandbox_clock, worker_env

# An upper bound for a state the test waits on, not an expectation: a healthy run reaches it in
# seconds; the bound only turns a hang into a failure.
STATE_TIMEOUT_MS = 300_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def world(demo, live_sandbox, start_worker, settings):
    settings.DEPLOY_DISPATCH_GRACE_SECONDS = 0
    run_sandbox_clock(live_sandbox)
    production = fast_health(demo.environments.get(name="production"))
    # Machines pass their checks a virtual second after booting, so a healthy rollout takes the
    # same few seconds whatever the load; the deadline for failing health (grace + timeout x
    # attempts) is long, so a starved worker on a loaded machine is never judged unhealthy.
    production.health_attempts = 60
    production.verification_window_seconds = 2
    production.save(update_fields=["health_attempts", "verification_window_seconds"])
    start_worker("w1", extra_env=worker_env(live_sandbox))
    return production


def request_from_environment_page(page, live_server, production, reason: str) -> Deploy:
    page.goto(f"{live_server.url}/environments/{production.pk}/")
    page.click("text=Deploy v1.3.0 to production…")
    drawer = page.locator("#drawer-root dialog[data-drawer][open]")
    drawer.locator("textarea[name=reason]").fill(reason)
    drawer.locator("button:has-text('Request deploy')").click()
    page.wait_for_url("**/deploys/*/")
    return Deploy.objects.get(reason=reason)


def test_request_approve_and_follow_to_succeeded(signed_in, live_server, world):
    alice = signed_in("alice")
    deploy = request_from_environment_page(alice, live_server, world, "ship the audit export")
    assert alice.locator("#deploy-state").inner_text() == "Awaiting approval"
    assert alice.locator("#step-3").inner_text().startswith("Batch 1/2")
    # Her own request: the drawer opens, but offers her no decision.
    alice.click("#open-approval")
    alice.locator("#drawer-root dialog[open] #cannot-decide").wait_for()
    assert alice.locator("button[value=approve]").count() == 0

    bob = signed_in("bob")
    bob.goto(f"{live_server.url}/approvals/")
    row = bob.locator(f"#approval-{deploy.approval_request.pk}")
    row.locator("a").click()
    drawer = bob.locator("#drawer-root dialog[data-drawer][open]")
    drawer.locator("textarea[name=comment]").fill("looks good")
    drawer.locator("button[value=approve]").click()
    bob.locator(".toast", has_text=f"Approved deploy #{deploy.pk}").wait_for()
    drawer.wait_for(state="detached")
    row.wait_for(state="detached")  # the queue refreshed itself
    assert bob.locator("#pending-count").inner_text() == "0"

    bob.goto(f"{live_server.url}/deploys/{deploy.pk}/")
    bob.locator("#deploy-state", has_text="Succeeded").wait_for(timeout=STATE_TIMEOUT_MS)
    # Terminal: the live region stops polling.
    assert "every" not in (bob.locator("#deploy-live").get_attribute("hx-trigger") or "")
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.SUCCEEDED
    # alice's page followed it too (it polls while the deploy runs).
    alice.locator("#deploy-state", has_text="Succeeded").wait_for(timeout=STATE_TIMEOUT_MS)


def test_rejecting_in_the_drawer(signed_in, live_server, world):
    alice = signed_in("alice")
    deploy = request_from_environment_page(alice, live_server, world, "try it")
    bob = signed_in("bob")
    bob.goto(f"{live_server.url}/deploys/")
    bob.locator(f"#deploy-{deploy.pk} a:has-text('Review')").click()
    drawer = bob.locator("#drawer-root dialog[data-drawer][open]")
    drawer.locator("button[value=reject]").click()
    drawer.locator("text=a reason is required").wait_for()  # 422 swapped into the drawer
    drawer.locator("textarea[name=comment]").fill("not during the sale")
    drawer.locator("button[value=reject]").click()
    drawer.wait_for(state="detached")
    bob.locator(f"#deploy-{deploy.pk}", has_text="Rejected").wait_for()
    deploy.refresh_from_db()
    assert deploy.state == Deploy.State.REJECTED
    alice.locator("#deploy-state", has_text="Rejected").wait_for()
