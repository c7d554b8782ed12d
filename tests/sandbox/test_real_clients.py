"""Clients nobody here wrote, against the sandbox.

* githubkit, whose models are generated from GitHub's own OpenAPI description, parses every
  answer HotDash's GitHub calls would get (releases, assets, compare, commits, statuses, check
  runs, deployments and their statuses, issue comments, pulls, branch protection, Actions
  secrets). A field missing or of the wrong type is a pydantic validation error.
* fly-python-sdk, a third-party Fly Machines client whose models follow what Fly's API returns,
  lists, inspects, creates, clones, starts and destroys apps and machines over real HTTP.

Both are test-only dependencies (requirements-dev.txt; fly-python-sdk installs without its
outdated httpx pin, see requirements-clients.txt).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fly_python_sdk.fly import Fly
from fly_python_sdk.fly.api import FlyApi
from fly_python_sdk.models.machine import FlyMachine
from githubkit import GitHub
from pydantic import BaseModel

from hotdash.sandbox import demo
from tests.fixtures.sandbox import SandboxTransport
from tests.sandbox.conformance import ValidatingTransport
from tests.sandbox.known_differences import github_reference

OWNER, REPO = demo.REPO_OWNER, demo.REPO_NAME


@pytest.fixture
def github(sandbox) -> Iterator[tuple[GitHub, ValidatingTransport]]:
    transport = ValidatingTransport(
        SandboxTransport(app=sandbox.app),
        github_reference(sandbox.github_url),
        sandbox.github.router,
    )
    client = GitHub(
        "sandbox-token",
        base_url=sandbox.github_url,
        transport=transport,
        http_cache=False,
        auto_retry=False,
    )
    yield client, transport


def parsed(response) -> BaseModel | list[BaseModel]:
    """githubkit's model of the answer: parsing validates every field it declares."""
    return response.parsed_data


def test_githubkit_parses_every_answer(sandbox, github):
    gh, transport = github
    rest = gh.rest
    pull = sandbox.open_pull("feat: kit", "feature/kit", body="githubkit walk")
    head = sandbox.github.branches["feature/kit"]

    releases = list(rest.paginate(rest.repos.list_releases, owner=OWNER, repo=REPO, per_page=2))
    assert len(releases) == len(sandbox.github.releases)
    release = parsed(rest.repos.get_release_by_tag(OWNER, REPO, "v1.3.0"))
    assert parsed(rest.repos.get_release(OWNER, REPO, release.id)).tag_name == "v1.3.0"
    assets = parsed(rest.repos.list_release_assets(OWNER, REPO, release.id))
    asset = parsed(rest.repos.get_release_asset(OWNER, REPO, assets[0].id))
    assert asset.digest and asset.uploader is not None
    assert parsed(rest.repos.list_tags(OWNER, REPO))
    assert parsed(rest.repos.get_content(OWNER, REPO, demo.VERSION_FILE, ref="v1.3.0"))

    comparison = parsed(rest.repos.compare_commits(OWNER, REPO, "v1.2.0...v1.3.0"))
    assert comparison.status == "ahead" and comparison.commits
    assert parsed(rest.repos.list_commits(OWNER, REPO, sha="main", per_page=5))
    assert parsed(rest.repos.get_commit(OWNER, REPO, head)).sha == head

    status = parsed(
        rest.repos.create_commit_status(OWNER, REPO, head, state="pending", context="kit")
    )
    assert status.creator is not None
    assert parsed(rest.repos.list_commit_statuses_for_ref(OWNER, REPO, head))
    assert parsed(rest.repos.get_combined_status_for_ref(OWNER, REPO, head)).state == "pending"
    sandbox.set_check(head, "test-unit", "in_progress", None)
    runs = parsed(rest.checks.list_for_ref(OWNER, REPO, head))
    assert {r.conclusion for r in runs.check_runs} == {"success", None}

    deployment = parsed(
        rest.repos.create_deployment(
            OWNER, REPO, ref="v1.3.0", environment="staging", auto_merge=False, required_contexts=[]
        )
    )
    rest.repos.create_deployment_status(OWNER, REPO, deployment.id, state="success")
    assert parsed(rest.repos.get_deployment(OWNER, REPO, deployment.id)).ref == "v1.3.0"
    assert parsed(rest.repos.list_deployments(OWNER, REPO, environment="staging"))
    assert (
        parsed(rest.repos.list_deployment_statuses(OWNER, REPO, deployment.id))[0].state
        == "success"
    )

    number = pull["number"]
    comment = parsed(rest.issues.create_comment(OWNER, REPO, number, body="preview ready"))
    parsed(rest.issues.update_comment(OWNER, REPO, comment.id, body="preview updated"))
    assert parsed(rest.issues.get_comment(OWNER, REPO, comment.id)).body == "preview updated"
    assert parsed(rest.issues.list_comments(OWNER, REPO, number))
    assert parsed(rest.pulls.list(OWNER, REPO, state="all"))[0].number == number
    assert parsed(rest.pulls.get(OWNER, REPO, number)).mergeable is True

    protection = parsed(rest.repos.get_branch_protection(OWNER, REPO, "main"))
    assert protection.required_status_checks is not None
    assert parsed(rest.actions.list_repo_secrets(OWNER, REPO)).total_count == 2
    repository = parsed(rest.repos.get(OWNER, REPO))
    assert repository.security_and_analysis.secret_scanning.status == "enabled"
    sandbox.add_secret_alert("ghp_kit")
    [alert] = parsed(rest.secret_scanning.list_alerts_for_repo(OWNER, REPO, hide_secret=True))
    assert alert.state == "open"

    problems = transport.problems()
    assert not problems, "\n".join(problems)


# --- Fly ------------------------------------------------------------------------------------


@pytest.fixture
def fly_root(live_sandbox, monkeypatch) -> str:
    """Every fly-python-sdk object talks to the live sandbox: the SDK builds its URLs as
    ``{base_url}/v1/...`` and hands only the token to the objects it creates."""
    root = f"{live_sandbox.url}/fly"
    init = FlyApi.__init__

    def pointed(self, api_token, *args, **kwargs):
        init(self, api_token, *args, **kwargs)
        self.base_url = root

    monkeypatch.setattr(FlyApi, "__init__", pointed)
    return root


def test_fly_python_sdk_runs_the_app_and_machine_lifecycle(live_sandbox, fly_root):
    org = Fly("sandbox-token").Org(demo.FLY_ORG)

    async def scenario() -> None:
        await org.create_app(app_name="hot-dash-sdk")
        apps = {a.name: a for a in await org.list_apps()}
        assert apps["hot-dash"].network == "default" and apps["hot-dash"].machine_count == 2
        production = org.App(demo.PRODUCTION_FLY_APP)
        assert (await production.inspect()).organization.slug == demo.FLY_ORG
        machines = await production.list_machines()
        assert all(m.private_ip and m.instance_id and m.image_ref for m in machines)
        first = production.Machine(machines[0].id)
        inspected = await first.inspect()
        assert inspected.created_at and inspected.updated_at
        assert [e.type for e in await first.get_events()][-1] == "launch"

        app = org.App("hot-dash-sdk")
        created = await app.create_machine(
            FlyMachine(config=inspected.config, region=demo.REGION, name="sdk-1")
        )
        assert created.state == "created" and created.config.image == inspected.config.image
        clone = await app.Machine(created.id).clone(name="sdk-2")
        assert clone.region == demo.REGION
        assert await app.list_machines(ids_only=True) == [created.id, clone.id]
        # The SDK's own stop() calls a method it lacks (get_machine), so stop over plain HTTP.
        async with httpx.AsyncClient(headers={"Authorization": "Bearer t"}) as http:
            for machine_id in (created.id, clone.id):
                url = f"{fly_root}/v1/apps/hot-dash-sdk/machines/{machine_id}"
                live_sandbox.advance(5)
                assert (await http.post(f"{url}/stop")).status_code == 200
        live_sandbox.advance(5)
        await app.Machine(created.id).start()
        live_sandbox.advance(5)
        assert (await app.Machine(created.id).inspect()).state == "started"
        await app.destroy_machines([clone.id])
        await app.delete()
        assert "hot-dash-sdk" not in {a.name for a in await org.list_apps()}

    asyncio.run(scenario())
