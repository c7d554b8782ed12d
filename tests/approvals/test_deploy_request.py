"""deploy_request: the gates, the refusals (nothing created, one audit event) and the plan."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest, AuditEvent
from deployments.models import Deploy, DeployStep, FreezeWindow, Notification
from deployments.services.environments import environment_lock
from hotdash.errors import Refused


def _refused(request_deploy, code, **options):
    deploys_before = Deploy.objects.count()
    with pytest.raises(Refused) as caught:
        request_deploy(**options)
    assert caught.value.code == code
    assert Deploy.objects.count() == deploys_before
    event = AuditEvent.objects.filter(verb="deploy.refused").first()
    assert event.data["code"] == code
    return caught.value


def test_it_plans_and_opens_an_approval_for_production(
    request_deploy, production, v130, requester, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        deploy = request_deploy()
    # Nothing is enqueued before approval but the e-mails to its approvers (the demo's three).
    emails = Notification.objects.filter(channel=Notification.Channel.EMAIL)
    assert sorted(emails.values_list("recipient__username", "event")) == [
        ("admin", "approval.requested"),
        ("bob", "approval.requested"),
        ("carol", "approval.requested"),
    ]
    assert len(callbacks) == 3
    assert deploy.state == Deploy.State.AWAITING_APPROVAL
    assert deploy.previous_release.version == "1.2.0"
    assert (deploy.artifact_sha256, deploy.image_digest) == (
        v130.artifact_sha256,
        v130.image_digest,
    )
    kinds = list(deploy.steps.values_list("kind", flat=True))
    # Two machines at 30% max unavailable: one machine per batch.
    assert kinds == [
        DeployStep.Kind.VERIFY_ARTIFACT,
        DeployStep.Kind.GITHUB_DEPLOYMENT,
        DeployStep.Kind.UPDATE_BATCH,
        DeployStep.Kind.UPDATE_BATCH,
        DeployStep.Kind.VERIFY,
        DeployStep.Kind.GITHUB_STATUS,
    ]
    batches = [s.data for s in deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH)]
    assert [b["batch"] for b in batches] == [1, 2]
    assert all(len(b["machines"]) == 1 for b in batches)
    checks = deploy.steps.get(kind=DeployStep.Kind.VERIFY_ARTIFACT).data["checks"]
    assert {c["name"] for c in checks} >= {"test-unit", "lint"}
    approval = deploy.approval_request
    assert approval.state == ApprovalRequest.State.PENDING
    assert approval.bound_artifact_sha256 == v130.artifact_sha256
    assert timedelta(minutes=59) < approval.expires_at - timezone.now() <= timedelta(minutes=60)
    verbs = list(AuditEvent.objects.order_by("id").values_list("verb", flat=True))
    assert verbs[-2:] == ["deploy.requested", "approval.requested"]


def test_staging_needs_no_approval_and_is_queued_on_commit(
    request_deploy, staging, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        deploy = request_deploy(environment=staging)
    assert deploy.state == Deploy.State.QUEUED
    assert not ApprovalRequest.objects.filter(deploy=deploy).exists()
    assert len(callbacks) == 1


def test_a_new_fly_app_is_planned_as_machines_to_create(request_deploy, sandbox, staging):
    staging.fly_app_name = "hot-dash-brand-new"
    staging.machine_count = 3
    staging.save()
    deploy = request_deploy(environment=staging)
    batches = [s.data for s in deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH)]
    assert batches == [
        {"create": 1, "batch": 1},
        {"create": 1, "batch": 2},
        {"create": 1, "batch": 3},
    ]


def test_viewer_is_refused(request_deploy, viewer):
    refusal = _refused(request_deploy, "forbidden", requested_by=viewer)
    assert "role" in refusal.message


def test_reason_is_required(request_deploy):
    _refused(request_deploy, "reason_required", reason="   ")


def test_bad_release_is_refused(request_deploy, v130):
    v130.bad_marked_at = timezone.now()
    v130.bad_reason = "500s on checkout"
    v130.save()
    refusal = _refused(request_deploy, "release_bad")
    assert "500s on checkout" in refusal.message


def test_invalid_release_is_refused(request_deploy, v130):
    v130.validation = "invalid"
    v130.validation_results = [{"check": "checksum", "ok": False, "message": "checksum mismatch"}]
    v130.save()
    refusal = _refused(request_deploy, "release_invalid")
    assert "checksum mismatch" in refusal.message


def test_locked_environment_says_who_why_since(request_deploy, production, admin_user):
    environment_lock(environment=production, actor=admin_user, reason="incident 42")
    refusal = _refused(request_deploy, "environment_locked")
    assert "root" in refusal.message and "incident 42" in refusal.message
    assert refusal.details["locked_by"] == "root"


def test_freeze_window_is_refused(request_deploy, production):
    now = timezone.now()
    FreezeWindow.objects.create(
        environment=production,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        reason="Black Friday",
    )
    refusal = _refused(request_deploy, "freeze_window")
    assert "Black Friday" in refusal.message


def test_failing_checks_are_listed(request_deploy, sandbox, v130):
    sandbox.set_check(v130.commit_sha, "test-unit", "completed", "failure")
    sandbox.set_check(v130.commit_sha, "lint", "in_progress", None)
    refusal = _refused(request_deploy, "checks_failing")
    assert "test-unit (failure)" in refusal.message and "lint (in_progress)" in refusal.message
    assert {f["name"] for f in refusal.details["failing"]} == {"test-unit", "lint"}


def test_an_optional_failing_check_never_blocks_and_is_recorded(
    request_deploy, demo, sandbox, v130
):
    demo.required_checks = ["test-unit"]
    demo.save()
    sandbox.set_check(v130.commit_sha, "test-unit", "completed", "success")
    sandbox.set_check(v130.commit_sha, "codecov/patch", "completed", "failure")
    deploy = request_deploy()
    requested = AuditEvent.objects.get(verb="deploy.requested", target_id=str(deploy.pk))
    assert requested.data["optional_checks_failing"] == ["codecov/patch"]


def test_a_required_failing_check_blocks_and_is_called_required(
    request_deploy, demo, sandbox, v130
):
    demo.required_checks = ["test-unit"]
    demo.save()
    sandbox.set_check(v130.commit_sha, "test-unit", "completed", "failure")
    sandbox.set_check(v130.commit_sha, "codecov/patch", "completed", "failure")
    refusal = _refused(request_deploy, "checks_failing")
    assert refusal.message.startswith("Required CI checks")
    assert {f["name"] for f in refusal.details["failing"]} == {"test-unit"}


def test_a_missing_required_check_fails(request_deploy, demo):
    demo.required_checks = ["test-unit", "security/scan"]
    demo.save()
    refusal = _refused(request_deploy, "checks_failing")
    assert "security/scan (missing)" in refusal.message


def test_only_admins_may_override(request_deploy, production, admin_user):
    environment_lock(environment=production, actor=admin_user, reason="incident 42")
    _refused(request_deploy, "invalid_override", overrides=["lock"], override_reason="hotfix")


def test_an_override_needs_a_reason(request_deploy, production, admin_user):
    environment_lock(environment=production, actor=admin_user, reason="incident 42")
    _refused(request_deploy, "invalid_override", requested_by=admin_user, overrides=["lock"])


def test_admin_override_is_audited_and_recorded(
    request_deploy, sandbox, production, v130, admin_user
):
    environment_lock(environment=production, actor=admin_user, reason="incident 42")
    sandbox.set_check(v130.commit_sha, "test-unit", "completed", "failure")
    deploy = request_deploy(
        requested_by=admin_user,
        overrides=["lock", "checks", "freeze_window"],
        override_reason="security hotfix, CI flake",
    )
    # Only the gates that were actually in the way are recorded as overridden.
    assert deploy.overrides == ["checks", "lock"]
    assert deploy.overridden_by == admin_user
    event = AuditEvent.objects.get(verb="deploy.override")
    assert event.data["overrides"] == ["checks", "lock"]
    assert event.data["failing_checks"] == ["test-unit"]


def test_fly_outage_refuses_without_creating(request_deploy, sandbox):
    sandbox.add_fault("status", status=403, service="fly")
    _refused(request_deploy, "upstream_error")


def test_approving_a_newer_request_supersedes_the_older_pending_one_but_asking_does_not(
    request_deploy, demo, approver
):
    from approvals.services import approval_decide
    from deployments.models import Release

    first = request_deploy()
    second = request_deploy(release=Release.objects.get(app=demo, version="1.3.0-rc.1"))
    third = request_deploy(reason="and a later one")
    first.refresh_from_db()
    assert first.state == Deploy.State.AWAITING_APPROVAL  # asking replaces nobody's request
    assert not AuditEvent.objects.filter(verb="approval.superseded").exists()

    approval_decide(request=second.approval_request, user=approver, verdict="approve")

    first.refresh_from_db()
    assert first.state == Deploy.State.SUPERSEDED
    assert first.superseded_by == second
    assert first.approval_request.state == ApprovalRequest.State.SUPERSEDED
    [event] = AuditEvent.objects.filter(verb="approval.superseded")
    assert (event.actor_name, event.data["superseded_by"]) == ("approver", second.pk)
    third.refresh_from_db()
    assert third.state == Deploy.State.AWAITING_APPROVAL  # newer than the approved one
