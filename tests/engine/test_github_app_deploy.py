"""A deploy made while HotDash is a GitHub App: the engine's GitHub writes go through the
installation token of the app's repository, and its shared client is kept per repository."""

from __future__ import annotations

from deployments.engine.clients import api_client
from deployments.models import Deploy
from hotdash.integrations import github_credentials
from hotdash.integrations.http import GITHUB
from hotdash.sandbox.github_app import DEMO_INSTALLATION_ID
from tests.engine.conftest import make_deploy


def test_a_deploy_reports_to_github_with_the_installation_token(
    production, release_130, requester, sandbox, github_app, driver
):
    deploy = driver.run(make_deploy(production, release_130, requested_by=requester))

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    tokens = sandbox.calls("POST", rf"/app/installations/{DEMO_INSTALLATION_ID}/access_tokens")
    assert len(tokens) == 1
    writes = sandbox.calls("POST", r"/repos/hotdash-demo/hot-dash/deployments.*")
    assert writes and all(r.status in (200, 201) for r in writes)
    with sandbox.lock:
        assert len(sandbox.github_app.tokens) == 1


def test_the_shared_client_is_kept_per_repository(sandbox, github_app, settings):
    def client(repo: str):
        token = github_credentials("hotdash-demo", repo)
        return api_client(GITHUB, base_url=settings.GITHUB_API_URL, token=token)

    first = client("hot-dash")
    assert client("hot-dash") is first
    assert client("other") is not first
