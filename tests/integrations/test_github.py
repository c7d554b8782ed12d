"""GitHubClient against the sandbox's REST API."""

from __future__ import annotations

import hashlib
import json

import pytest

from hotdash.integrations.github import DEPLOYMENT_KEY
from hotdash.integrations.http import PermanentAPIError, RetryableAPIError
from hotdash.sandbox import demo

MARKER = "<!-- hotdash:preview -->"


def test_releases_are_listed_newest_first_with_prerelease_flags(github):
    releases = github.list_releases()
    assert [r.tag_name for r in releases] == [f"v{r.version}" for r in demo.DEMO_RELEASES][::-1]
    assert {r.tag_name for r in releases if r.prerelease} == {"v1.3.0-rc.1"}


def test_pagination_follows_link_headers_and_honours_per_page(sandbox, github):
    path = "/repos/hotdash-demo/hot-dash/releases"
    tags = [item["tag_name"] for item in github.api.paginate(path, params={"per_page": 4})]
    assert len(tags) == len(demo.DEMO_RELEASES) == len(set(tags))
    pages = sandbox.calls("GET", path)
    assert [c.query.get("page") for c in pages] == [None, ["2"]]


def test_release_assets_have_digests_and_download(github):
    release = github.get_release_by_tag("v1.2.0")
    demo_release = demo.release("1.2.0")
    assets = {a.name: a for a in github.list_release_assets(release.id)}
    assert assets == {a.name: a for a in release.assets}
    tarball = assets[demo_release.artifact_name]
    checksum = assets[f"{demo_release.artifact_name}.sha256"]
    assert tarball.digest == f"sha256:{demo_release.artifact_sha256}"
    assert github.download_asset(checksum.id) == demo_release.checksum_file
    data = github.download_asset(tarball.id)
    assert hashlib.sha256(data).hexdigest() == demo_release.artifact_sha256


def test_missing_release_is_permanent_404(github):
    with pytest.raises(PermanentAPIError) as caught:
        github.get_release_by_tag("v9.9.9")
    assert caught.value.status == 404
    assert caught.value.message == "Not Found"


def test_version_file_at_each_tag(github):
    for release in demo.DEMO_RELEASES:
        content = json.loads(github.get_file(demo.VERSION_FILE, release.tag))
        assert content == {"name": "hot-dash", "version": release.version}


def test_compare_lists_conventional_commits_between_tags(github):
    comparison = github.compare("v1.2.0", "v1.3.0")
    assert comparison.status == "ahead"
    expected = demo.release("1.3.0-rc.1").commits + demo.release("1.3.0").commits
    assert [c.message for c in comparison.commits] == [c.message for c in expected]
    assert [c.sha for c in comparison.commits] == [c.sha for c in expected]
    assert comparison.total_commits == 4
    assert github.compare("v1.3.0", "v1.2.0").status == "behind"


def test_deployment_created_listed_and_found(github):
    deployment = github.create_deployment(
        ref="v1.3.0", environment="production", key="deploy-1", description="ship it"
    )
    assert deployment.sha == demo.release("1.3.0").commit_sha
    assert deployment.payload[DEPLOYMENT_KEY] == "deploy-1"
    assert deployment.production_environment
    assert github.list_deployments(ref="v1.3.0", environment="production") == [deployment]
    assert github.list_deployments(environment="staging") == []
    assert github.find_deployment(ref="v1.3.0", environment="production", key="deploy-1")
    status = github.create_deployment_status(
        deployment.id, "success", environment_url="https://hot-dash.fly.dev"
    )
    assert status.state == "success"
    assert github.list_deployment_statuses(deployment.id) == [status]


def test_deployment_202_is_re_requested(sandbox, github):
    sandbox.github.next_deployment_responses.append(202)
    deployment = github.create_deployment(ref="v1.3.0", environment="staging", key="k")
    assert deployment.environment == "staging"
    assert [c.status for c in sandbox.calls("POST", ".*/deployments")] == [202, 201]


def test_deployment_202_twice_is_retryable(sandbox, github):
    sandbox.github.next_deployment_responses.extend([202, 202])
    with pytest.raises(RetryableAPIError) as caught:
        github.create_deployment(ref="v1.3.0", environment="staging", key="k")
    assert caught.value.status == 202
    assert "Auto-merged" in caught.value.message


def test_deployment_409_when_checks_fail(sandbox, github):
    sandbox.set_check("v1.3.0", "test-unit", conclusion="failure")
    with pytest.raises(PermanentAPIError) as caught:
        github.create_deployment(ref="v1.3.0", environment="production", key="k")
    assert caught.value.status == 409
    assert github.create_deployment(
        ref="v1.3.0", environment="production", key="k", required_contexts=["lint"]
    )


def test_deployment_for_unknown_ref_is_422(github):
    with pytest.raises(PermanentAPIError) as caught:
        github.create_deployment(ref="v0.0.0", environment="production", key="k")
    assert caught.value.status == 422


def test_lost_deployment_response_does_not_create_a_second(sandbox, github):
    sandbox.add_fault("lose", service="github", method="POST", path="/deployments$", times=1)
    deployment = github.create_deployment(ref="v1.3.0", environment="production", key="d-9")
    assert len(sandbox.github.deployments) == 1
    assert deployment.id in sandbox.github.deployments


def test_pull_requests_get_and_list(sandbox, github):
    opened = sandbox.open_pull("feat: dark mode", "feature/dark-mode", author="carol")
    pull = github.get_pull(opened["number"])
    assert (pull.number, pull.state, pull.head_ref, pull.user_login) == (
        18,
        "open",
        "feature/dark-mode",
        "carol",
    )
    assert pull.head_repo == "hotdash-demo/hot-dash"
    assert [p.number for p in github.list_pulls(head="hotdash-demo:feature/dark-mode")] == [18]
    sandbox.close_pull(18, merge=True)
    assert github.list_pulls() == []
    merged = github.list_pulls(state="closed")[0]
    assert merged.merged and merged.merge_commit_sha == sandbox.github.branches["main"]


def test_comments_create_update_and_upsert_by_marker(sandbox, github):
    number = sandbox.open_pull("feat: x", "feature/x")["number"]
    first = github.upsert_comment(number, MARKER, "Preview: creating")
    assert first.body == f"{MARKER}\nPreview: creating"
    assert first.user_login == "hotdash[bot]"
    github.create_comment(number, "unrelated")
    second = github.upsert_comment(number, MARKER, "Preview: https://pr-18.fly.dev")
    assert second.id == first.id
    assert [c.body for c in github.list_comments(number)] == [second.body, "unrelated"]
    patches = len(sandbox.calls("PATCH"))
    assert github.upsert_comment(number, MARKER, "Preview: https://pr-18.fly.dev") == second
    assert len(sandbox.calls("PATCH")) == patches  # unchanged body: no write
    assert github.update_comment(first.id, f"{MARKER}\ngone").body.endswith("gone")


def test_lost_comment_response_does_not_post_twice(sandbox, github):
    number = sandbox.open_pull("feat: y", "feature/y")["number"]
    sandbox.add_fault("lose", service="github", method="POST", path="/comments$", times=1)
    github.create_comment(number, "hello")
    assert [c.body for c in github.list_comments(number)] == ["hello"]


def test_ci_state_for_a_ref(sandbox, github):
    runs = github.check_runs("v1.3.0")
    assert {(r.name, r.status, r.conclusion) for r in runs} == {
        (name, "completed", "success") for name in demo.REQUIRED_CHECKS
    }
    sandbox.set_check("v1.3.0", "lint", status="in_progress", conclusion=None)
    lint = next(r for r in github.check_runs("v1.3.0") if r.name == "lint")
    assert (lint.status, lint.conclusion) == ("in_progress", None)
    combined = github.combined_status("v1.3.0")
    assert (combined.state, combined.total_count) == ("pending", 0)
    github.api.request(
        "POST",
        f"/repos/hotdash-demo/hot-dash/statuses/{combined.sha}",
        json={"state": "success", "context": "security/scan"},
    )
    combined = github.combined_status("v1.3.0")
    assert combined.state == "success"
    assert [s.context for s in combined.statuses] == ["security/scan"]


def test_branch_protection_and_secret_names(sandbox, github):
    protection = github.branch_protection("main")
    assert protection.required_checks == demo.REQUIRED_CHECKS
    assert protection.strict and protection.enforce_admins
    assert protection.required_approving_review_count == 1
    assert protection.dismiss_stale_reviews and protection.required_conversation_resolution
    assert protection.required_linear_history
    assert not protection.allow_force_pushes and not protection.allow_deletions
    sandbox.open_pull("feat: z", "feature/z")
    assert github.branch_protection("feature/z") is None
    secrets = github.actions_secrets()
    assert [s.name for s in secrets] == ["FLY_API_TOKEN", "HOTDASH_API_TOKEN"]
    now = sandbox.clock.now()
    ages = {s.name: round((now - s.updated_at.timestamp()) / 86400) for s in secrets}
    assert ages == demo.ACTIONS_SECRET_AGES


def test_protection_changed_in_the_sandbox_reads_back(sandbox, github):
    sandbox.change_protection(allow_force_pushes=True, remove_check="lint")
    protection = github.branch_protection("main")
    assert protection.allow_force_pushes
    assert "lint" not in protection.required_checks
    sandbox.change_protection(protected=False)
    assert github.branch_protection("main") is None


def test_repository_security_and_secret_scanning_alerts(sandbox, github):
    repository = github.get_repository()
    assert repository.default_branch == "main"
    assert repository.secret_scanning and repository.secret_scanning_push_protection
    assert github.secret_scanning_alerts() == []
    first = sandbox.add_secret_alert("ghp_first")["number"]
    sandbox.clock.advance(60)
    sandbox.add_secret_alert("sk_second", secret_type="stripe_api_key", display_name="Stripe")
    alerts = github.secret_scanning_alerts()
    assert [a.secret_type for a in alerts] == ["stripe_api_key", "fly_api_token"]
    [request] = sandbox.calls(path=".*/secret-scanning/alerts")[-1:]
    assert request.query["hide_secret"] == ["true"]
    sandbox.resolve_secret_alert(first)
    assert [a.secret_type for a in github.secret_scanning_alerts()] == ["stripe_api_key"]
    sandbox.set_security(secret_scanning=False)
    assert github.get_repository().secret_scanning is False
    with pytest.raises(PermanentAPIError) as caught:
        github.secret_scanning_alerts()
    assert caught.value.status == 404


def test_other_repositories_are_404(sandbox):
    from hotdash.integrations.github import github_client

    with pytest.raises(PermanentAPIError) as caught:
        github_client("someone", "else").list_releases()
    assert caught.value.status == 404
