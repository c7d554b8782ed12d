"""Release sync against the sandbox's GitHub: discovery, validation, changelog, deletion."""

from __future__ import annotations

import json

import pytest

from approvals.models import AuditEvent
from deployments.models import Build, Release
from deployments.services.releases import (
    ReleaseSyncFailed,
    ReleaseWebhookIgnored,
    release_handle_webhook,
    release_sync,
)
from hotdash.sandbox import demo

pytestmark = pytest.mark.django_db


def _webhook_payload(sandbox, action="published"):
    delivery = [d for d in sandbox.webhook.deliveries if d["event"] == "release"][-1]
    payload = json.loads(delivery["body"])
    payload["action"] = action
    return payload


def _register_build(app, sandbox, version):
    sha = sandbox.github.tags[f"v{version}"]
    item = demo.DemoRelease(version=version, prerelease=False, published_at=demo.EPOCH, commits=())
    return Build.objects.create(
        app=app, commit_sha=sha, image_ref=item.image_ref, image_digest=item.image_digest
    )


def _checks(release):
    return {c["check"]: (c["ok"], c["message"]) for c in release.validation_results}


def test_sync_of_the_demo_repository_validates_every_release(demo, sandbox):
    result = release_sync(app=demo, actor="system")
    assert result.seen == 7 and result.deleted == []
    releases = {r.version: r for r in Release.objects.filter(app=demo)}
    assert all(r.validation == Release.Validation.VALID for r in releases.values())
    assert all(r.github_release_id for r in releases.values())
    rc = releases["1.3.0-rc.1"]
    assert rc.is_prerelease and rc.commit_sha == demo_commit("1.3.0-rc.1")
    assert _checks(rc)["version_file"] == (True, "package.json at v1.3.0-rc.1 says 1.3.0-rc.1.")
    assert {c["name"] for c in rc.ci_checks} >= {"test-unit", "lint"}
    # Nothing changed on GitHub: the next reconcile re-reads nothing and audits nothing.
    events = AuditEvent.objects.count()
    again = release_sync(app=demo, actor="system")
    assert again.stored == [] and AuditEvent.objects.count() == events


def demo_commit(version):
    return demo.release(version).commit_sha


def test_changelog_for_a_real_range_groups_by_type_with_pr_links(demo, sandbox):
    release_sync(app=demo, actor="system")
    changelog = Release.objects.get(app=demo, version="1.2.0").changelog
    assert changelog["base"] == "v1.1.1" and changelog["head"] == "v1.2.0"
    assert changelog["compare_url"].endswith("hotdash-demo/hot-dash/compare/v1.1.1...v1.2.0")
    groups = {g["key"]: g["entries"] for g in changelog["groups"]}
    assert [e["subject"] for e in groups["features"]] == ["approval drawer (#9)"]
    assert [e["subject"] for e in groups["performance"]] == ["cache overview query (#10)"]
    assert [(e["type"], e["prs"][0]["number"]) for e in groups["other"]] == [("docs", 11)]
    assert groups["features"][0]["prs"][0]["url"] == (
        "https://github.com/hotdash-demo/hot-dash/pull/9"
    )
    latest = Release.objects.get(app=demo, version="1.3.0").changelog
    assert latest["base"] == "v1.3.0-rc.1"
    breaking = [e for g in latest["groups"] for e in g["entries"] if e["breaking"]]
    assert [e["subject"] for e in breaking] == ["audit export (#17)"]


def test_a_release_naming_its_image_in_the_notes_is_deployable_at_once(demo, sandbox):
    sandbox.publish_release("1.4.0")
    release_sync(app=demo, actor="system")
    release = Release.objects.get(app=demo, version="1.4.0")
    assert release.is_deployable, release.validation_results
    assert release.image_ref == "registry.fly.io/hot-dash:v1.4.0"
    assert release.image_digest == sandbox.github.releases[-1]["body"].rsplit("@", 1)[1]


def test_a_new_release_is_valid_once_its_image_is_registered(demo, sandbox):
    sandbox.publish_release(
        "1.4.0",
        commits=["feat(api): releases endpoint (#20)", "fix: retry sync (#21)"],
        image_in_notes=False,
    )
    release_sync(app=demo, actor="system")
    release = Release.objects.get(app=demo, version="1.4.0")
    assert release.validation == Release.Validation.INVALID and not release.is_deployable
    ok, message = _checks(release)["image"]
    assert not ok and "POST /api/v1/builds" in message
    _register_build(demo, sandbox, "1.4.0")
    release_sync(app=demo, actor="system")
    release.refresh_from_db()
    assert release.validation == Release.Validation.VALID and release.is_deployable
    assert release.image_ref == "registry.fly.io/hot-dash:v1.4.0"
    features = release.changelog["groups"][0]
    assert features["key"] == "features" and features["entries"][0]["scope"] == "api"


def test_version_file_mismatch_blocks_with_its_message(demo, sandbox):
    sandbox.publish_release("1.4.0")
    _register_build(demo, sandbox, "1.4.0")
    sandbox.github.commits[sandbox.github.tags["v1.4.0"]]["version"] = "1.3.9"
    release_sync(app=demo, actor="system")
    release = Release.objects.get(app=demo, version="1.4.0")
    assert not release.is_deployable
    assert _checks(release)["version_file"] == (
        False,
        "package.json at v1.4.0 says version '1.3.9', but the tag is v1.4.0 (1.4.0).",
    )


def test_missing_artifact_and_checksum_mismatch_block_with_their_messages(demo, sandbox):
    record = sandbox.publish_release("1.4.0")
    _register_build(demo, sandbox, "1.4.0")
    artifact_id, checksum_id = record["assets"]
    sandbox.github.assets[checksum_id]["data"] = b"0" * 64 + b"  hot-dash-1.4.0.tar.gz\n"
    release_sync(app=demo, actor="system")
    release = Release.objects.get(app=demo, version="1.4.0")
    ok, message = _checks(release)["checksum"]
    assert not ok and message.startswith("Checksum mismatch: hot-dash-1.4.0.tar.gz.sha256 says 000")
    assert release.artifact_sha256 == "" and not release.is_deployable

    record["assets"].remove(artifact_id)
    release_sync(app=demo, actor="system")
    release.refresh_from_db()
    assert _checks(release)["artifact"] == (
        False,
        "Missing release asset(s): hot-dash-1.4.0.tar.gz.",
    )


def test_a_tag_that_is_not_semver_is_listed_as_rejected(demo, sandbox):
    record = sandbox.publish_release("1.4.0")
    record["tag"] = "release-2026-11"
    release_sync(app=demo, actor="system")
    rejected = Release.objects.get(app=demo, tag="release-2026-11")
    assert rejected.validation == Release.Validation.REJECTED
    assert rejected.validation_results[0]["message"] == (
        "Tag 'release-2026-11' is not SemVer 2.0: expected MAJOR.MINOR.PATCH "
        "(three dot-separated numbers, e.g. v1.2.3)."
    )
    assert AuditEvent.objects.filter(verb="release.rejected", target_id=str(rejected.pk)).exists()


def test_a_release_deleted_on_github_is_marked_not_lost(demo, sandbox):
    release_sync(app=demo, actor="system")
    sandbox.github.releases = [r for r in sandbox.github.releases if r["tag"] != "v1.1.0"]
    result = release_sync(app=demo, actor="system")
    assert result.deleted == ["v1.1.0"]
    release = Release.objects.get(app=demo, version="1.1.0")
    assert release.deleted_on_github_at is not None and not release.is_deployable
    assert release.changelog["groups"]  # the row and its history are kept
    assert AuditEvent.objects.filter(verb="release.deleted_on_github").count() == 1


def test_github_failure_changes_nothing_and_says_so(demo, sandbox):
    sandbox.add_fault("status", service="github", path="/releases", status=404)
    before = list(Release.objects.values_list("id", "validation", "deleted_on_github_at"))
    with pytest.raises(ReleaseSyncFailed, match="Could not read releases of hotdash-demo/hot-dash"):
        release_sync(app=demo, actor="system")
    assert list(Release.objects.values_list("id", "validation", "deleted_on_github_at")) == before


def test_webhook_published_then_deleted(demo, sandbox):
    sandbox.publish_release("1.4.0", prerelease=True)
    release = release_handle_webhook(
        app=demo, action="published", payload=_webhook_payload(sandbox)
    )
    assert release.version == "1.4.0" and release.is_prerelease
    assert release.changelog["base"] == "v1.3.1"
    assert AuditEvent.objects.get(verb="release.discovered").actor_name == "github"
    deleted = release_handle_webhook(
        app=demo, action="deleted", payload=_webhook_payload(sandbox, "deleted")
    )
    assert deleted.pk == release.pk and deleted.deleted_on_github_at is not None


@pytest.mark.parametrize(
    ("app_known", "action", "payload", "reason"),
    [
        (False, "published", {"repository": {"full_name": "evil/repo"}}, "evil/repo"),
        (True, "published", {"release": {"tag_name": "v9.0.0"}}, "Malformed release payload"),
        (True, "published", {}, "Malformed release payload"),
        (True, "assigned", {}, "needs no work"),
        (True, "deleted", {"release": {"id": 1, "tag_name": "v9.9.9"}}, "never synced"),
    ],
)
def test_webhooks_that_cannot_be_applied_are_ignored_with_a_reason(
    demo, app_known, action, payload, reason
):
    with pytest.raises(ReleaseWebhookIgnored, match=reason):
        release_handle_webhook(app=demo if app_known else None, action=action, payload=payload)
    assert not Release.objects.filter(version__startswith="9.").exists()


def test_webhook_with_a_malformed_tag_records_a_rejected_release(demo, sandbox):
    sandbox.publish_release("1.4.0")
    payload = _webhook_payload(sandbox)
    payload["release"]["tag_name"] = "v1.4"
    release = release_handle_webhook(app=demo, action="published", payload=payload)
    assert release.validation == Release.Validation.REJECTED and not release.is_deployable
