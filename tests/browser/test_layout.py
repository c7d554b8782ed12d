"""Every page at phone (390 × 844) and desktop (1400 × 900) size, in a real chromium: nothing
scrolls the page sideways, axe-core finds no serious or critical accessibility violation, the
nav collapses behind a Menu button on the phone, and an approver can reach and press Approve
and Reject in the drawer without scrolling."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.contrib.auth import get_user_model

from approvals.models import ApprovalRequest
from deployments.models import Deploy, Environment, Preview, Release
from deployments.services.requests import deploy_request
from deployments.services.rollbacks import rollback_request
from tests.browser.conftest import DESKTOP, PHONE
from tests.uptime.test_pages import probe_history

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
DEVICES = {"phone": PHONE, "desktop": DESKTOP}
SERIOUS = {"serious", "critical"}
AXE = Axe()


@pytest.fixture
def scene(demo, live_sandbox):
    """The demo world (with its finished deploys), a deploy awaiting approval, a running
    pull-request preview, an emergency rollback of staging (the overview's banner), and two hours
    of uptime probes of production, the last ones failed."""
    staging = demo.environments.get(name="staging")
    staging.health = Environment.Health.FAILING
    staging.save()
    rollback_request(
        environment=staging,
        release=Release.objects.get(app=demo, version="1.3.0-rc.1"),
        requested_by=get_user_model().objects.get(username="carol"),
        reason="login fails for every user since 1.3.0",
        confirmation=demo.name,
        emergency=True,
    )
    production = demo.environments.get(name="production")
    probe_history(production, failing_last=4)
    deploy = deploy_request(
        environment=production,
        release=Release.objects.get(app=demo, version="1.3.0"),
        requested_by=get_user_model().objects.get(username="alice"),
        reason="ship the audit export",
    )
    preview = Preview.objects.create(
        app=demo,
        pr_number=42,
        pr_title="Dark mode for the overview",
        pr_author="octocat",
        branch="dark-mode",
        head_sha="4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        url="https://hot-dash-pr-42.fly.dev",
        state=Preview.State.RUNNING,
    )
    finished = Deploy.objects.filter(state=Deploy.State.SUCCEEDED).latest("pk")
    # Not rehearsed on staging: its release page shows Promote disabled, with why.
    unrehearsed = Release.objects.get(app=demo, version="1.3.1")
    return SimpleNamespace(
        deploy=deploy,
        finished=finished,
        environment=production,
        preview=preview,
        unrehearsed=unrehearsed,
        staging=staging,
    )


def pages(page, scene) -> list[str]:
    """Every link in the page header (brand, nav, profile), read from the rendered page so a
    new nav entry is covered at once, and one detail page of each kind."""
    header = page.eval_on_selector_all(
        "header a[href]", "links => links.map(link => link.getAttribute('href'))"
    )
    details = [
        f"/deploys/{scene.deploy.pk}/",
        f"/deploys/{scene.finished.pk}/",
        f"/environments/{scene.environment.pk}/",
        f"/environments/{scene.staging.pk}/",
        f"/environments/{scene.staging.pk}/rollback/",
        f"/releases/{scene.deploy.release_id}/",
        f"/releases/{scene.unrehearsed.pk}/",
        f"/previews/{scene.preview.pk}/",
        "/ops/runbook/hot-dash/",
        "/no/such/page/",
    ]
    assert {"/", "/approvals/", "/audit/", "/ops/", "/profile/"} <= set(header), header
    return list(dict.fromkeys(header + details))


def overflow_and_violations(page, width: int) -> list[str]:
    """What is wrong with the page on screen: sideways scrolling, serious axe violations."""
    problems = []
    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    if scroll_width > width:
        problems.append(f"scrolls sideways: {scroll_width} px wide in a {width} px viewport")
    for violation in AXE.run(page).response["violations"]:
        if violation["impact"] in SERIOUS:
            targets = [" ".join(node["target"]) for node in violation["nodes"]]
            problems.append(f"axe {violation['id']} ({violation['impact']}): {targets}")
    return problems


@pytest.mark.parametrize("device", DEVICES)
def test_every_page_fits_the_screen_and_passes_axe(signed_in, live_server, scene, device):
    page = signed_in("bob", **DEVICES[device])
    width = DEVICES[device]["viewport"]["width"]
    problems = {}
    for path in pages(page, scene):
        page.goto(f"{live_server.url}{path}")
        found = overflow_and_violations(page, width)
        if found:
            problems[path] = found
    assert not problems, problems


def test_the_phone_nav_hides_behind_a_menu_button(signed_in, scene):
    page = signed_in("bob", **PHONE)
    audit_link = page.locator("nav[aria-label=Main] a", has_text="Audit")
    assert not audit_link.is_visible()
    page.locator("summary", has_text="Menu").click()
    audit_link.click()
    page.wait_for_url("**/audit/")


def test_the_desktop_nav_shows_without_a_menu_button(signed_in, scene):
    page = signed_in("bob", **DESKTOP)
    assert page.locator("nav[aria-label=Main] a", has_text="Audit").is_visible()
    assert not page.locator("summary", has_text="Menu").is_visible()


def in_view_and_on_top(page, button) -> bool:
    """Inside the viewport without scrolling, and the element a tap on its centre would hit."""
    box = button.bounding_box()
    viewport = page.viewport_size
    if not box or box["x"] < 0 or box["y"] < 0:
        return False
    if box["x"] + box["width"] > viewport["width"] or box["y"] + box["height"] > viewport["height"]:
        return False
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    return button.evaluate(
        "(el, [x, y]) => el.contains(document.elementFromPoint(x, y))", list(centre)
    )


@pytest.mark.parametrize("device", DEVICES)
def test_an_approver_reaches_approve_and_reject_in_the_drawer(
    signed_in, live_server, scene, device
):
    page = signed_in("bob", **DEVICES[device])
    width = DEVICES[device]["viewport"]["width"]
    page.goto(f"{live_server.url}/deploys/")
    page.locator(f"#deploy-{scene.deploy.pk} a", has_text="Review").click()
    drawer = page.locator("#drawer-root dialog[data-drawer][open]")
    drawer.wait_for()
    approve = drawer.locator("button[value=approve]")
    reject = drawer.locator("button[value=reject]")
    assert in_view_and_on_top(page, approve) and in_view_and_on_top(page, reject)
    assert overflow_and_violations(page, width) == []
    drawer.locator("textarea[name=comment]").fill("looks good")
    approve.click()
    drawer.wait_for(state="detached")
    approval = ApprovalRequest.objects.get(deploy=scene.deploy)
    assert approval.state == ApprovalRequest.State.APPROVED
