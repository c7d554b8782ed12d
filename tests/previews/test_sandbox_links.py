"""Sandbox mode is honest: every link to GitHub or a Fly app on the demo's pages leads to the
sandbox's own read-only page of that thing, and that page answers."""

from __future__ import annotations

import re

import httpx
from django.urls import reverse

from deployments.models import Deploy, Environment, Release
from hotdash.links import github_url, outside_url
from tests.fixtures.sandbox import SandboxTransport
from tests.previews.conftest import preview_deploys, preview_of

OUTSIDE_LINK = re.compile(r'href="(https?://[^"]+)"')


def test_every_outside_link_on_the_demo_pages_leads_to_a_sandbox_page(
    world, driver, process_deliveries, client, viewer, settings
):
    number = world.open_pull("feat: honest links", "honest-links")["number"]
    process_deliveries()
    [deploy] = preview_deploys(number)
    assert driver.run(deploy).state == Deploy.State.SUCCEEDED
    production = Environment.objects.get(app__name="hot-dash", name="production")
    release = Release.objects.filter(app=production.app).order_by("-published_at").first()
    finished = Deploy.objects.filter(state=Deploy.State.SUCCEEDED).exclude(pk=deploy.pk).first()
    pages = [
        reverse("overview"),
        reverse("deployments:release-list"),
        reverse("deployments:release-detail", args=[release.pk]),
        reverse("deployments:preview-list"),
        reverse("deployments:preview-detail", args=[preview_of(number).pk]),
        reverse("deployments:deploy-detail", args=[finished.pk]),
        reverse("deployments:deploy-detail", args=[deploy.pk]),
        reverse("deployments:environment-detail", args=[production.pk]),
    ]
    client.force_login(viewer)
    links = set()
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        links |= set(OUTSIDE_LINK.findall(response.content.decode()))

    wanted = ("/pull/", "/compare/", "/releases/tag/", "/commit/", "/fly-apps/")
    assert {kind for link in links for kind in wanted if kind in link} == set(wanted), links
    with httpx.Client(transport=SandboxTransport(app=world.app)) as browser:
        for link in sorted(links):
            assert link.startswith(settings.SANDBOX_URL + "/"), link  # never github.com, fly.dev
            answer = browser.get(link)
            assert answer.status_code == 200, (link, answer.text)
            assert answer.headers["content-type"].startswith("text/html")


def test_the_sandbox_pages_show_what_the_world_holds_and_nothing_else(world, process_deliveries):
    pull = world.open_pull("feat: <script>", "pages")
    process_deliveries()
    repository = world.github.full_name
    with httpx.Client(transport=SandboxTransport(app=world.app), base_url=world.url) as browser:
        page = browser.get(f"/{repository}/pull/{pull['number']}").text
        assert "feat: &lt;script&gt;" in page and "<script>" not in page
        assert "HotDash preview: **Creating**" in page  # the comment HotDash posted
        assert browser.get(f"/{repository}/pull/999").status_code == 404
        assert browser.get(f"/{repository}/commit/{pull['head_sha']}").status_code == 200
        tags = [release["tag"] for release in world.github.releases]
        assert tags[-1] in browser.get(f"/{repository}/releases").text
        assert browser.get(f"/{repository}/releases/tag/{tags[-1]}").status_code == 200
        assert browser.get(f"/{repository}/releases/tag/v0.0.0").status_code == 404
        assert browser.get(f"/{repository}/compare/{tags[0]}...{tags[-1]}").status_code == 200
        assert browser.get("/someone/else/pull/1").status_code == 404
        assert browser.get(f"/fly-apps/hot-dash-pr-{pull['number']}").status_code == 200
        assert browser.get("/fly-apps/no-such-app").status_code == 404
        assert browser.post(f"/{repository}/pull/{pull['number']}").status_code == 405


def test_outside_the_sandbox_links_go_to_github_and_fly_dev_as_they_are(settings):
    settings.SANDBOX_MODE = False
    settings.GITHUB_WEB_URL = "https://github.com"
    assert github_url("acme/shop", "/pull/7") == "https://github.com/acme/shop/pull/7"
    assert outside_url("https://shop.fly.dev") == "https://shop.fly.dev"
    assert outside_url("https://example.com/x") == "https://example.com/x"
    assert outside_url("") == ""


def test_in_the_sandbox_links_go_to_its_pages(settings):
    settings.SANDBOX_MODE = True
    settings.GITHUB_WEB_URL = settings.SANDBOX_URL = "http://127.0.0.1:8001"
    assert github_url("acme/shop", "/compare/v1...v2") == (
        "http://127.0.0.1:8001/acme/shop/compare/v1...v2"
    )
    assert outside_url("https://shop-pr-3.fly.dev/") == "http://127.0.0.1:8001/fly-apps/shop-pr-3"
