"""approval_decide and the expiry/void sweeps: policy, state, audit and exactly-once queueing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from approvals.models import ApprovalRequest, AuditEvent, Decision
from approvals.services import (
    ApprovalRefused,
    approval_decide,
    approval_expire_due,
    approval_void_changed,
)
from deployments.models import Deploy


def _refusal(pending, user, verdict="approve", comment=""):
    decisions = Decision.objects.count()
    with pytest.raises(ApprovalRefused) as caught:
        approval_decide(request=pending, user=user, verdict=verdict, comment=comment)
    assert Decision.objects.count() == decisions
    event = AuditEvent.objects.filter(verb="approval.refused").first()
    assert event.data["reason"] == caught.value.code
    assert event.actor_name == user.get_username()
    return caught.value


def test_final_approval_queues_once_on_commit(
    pending, approver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        approval_decide(request=pending, user=approver, verdict="approve", comment="lgtm")
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.APPROVED
    assert pending.deploy.state == Deploy.State.QUEUED
    assert len(callbacks) == 1
    verbs = list(AuditEvent.objects.order_by("-id").values_list("verb", flat=True)[:2])
    assert verbs == ["deploy.queued", "approval.approved"]


def test_reject_needs_a_reason_and_ends_the_deploy(pending, approver):
    refusal = _refusal(pending, approver, verdict="reject", comment=" ")
    assert refusal.status == 422
    approval_decide(request=pending, user=approver, verdict="reject", comment="not today")
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.REJECTED
    assert pending.deploy.state == Deploy.State.REJECTED
    assert AuditEvent.objects.filter(verb="approval.rejected").count() == 1


def test_self_approval_is_refused(pending, requester, production):
    # Give the requester the approver role: still not their own deploy.
    from django.contrib.auth.models import Group

    requester.groups.add(Group.objects.get(name="approver"))
    requester = type(requester).objects.get(pk=requester.pk)
    refusal = _refusal(pending, requester)
    assert (refusal.code, refusal.status) == ("self_approval", 403)
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.PENDING


def test_viewer_approval_is_refused(pending, viewer):
    assert _refusal(pending, viewer).code == "not_approver"


def test_approval_after_expiry_is_refused_and_expires(pending, approver):
    ApprovalRequest.objects.filter(pk=pending.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert _refusal(pending, approver).code == "expired"
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.EXPIRED
    assert pending.deploy.state == Deploy.State.EXPIRED
    assert AuditEvent.objects.filter(verb="approval.expired").count() == 1


def test_approval_of_a_changed_artifact_is_refused_and_voids(pending, approver, v130):
    v130.artifact_sha256 = "f" * 64
    v130.save()
    refusal = _refusal(pending, approver)
    assert refusal.code == "changed" and "artifact checksum" in refusal.message
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.VOIDED
    assert pending.deploy.state == Deploy.State.CANCELLED
    assert "voided" in pending.deploy.error


def test_no_one_decides_twice(production, request_deploy, approver, second_approver):
    production.approvals_required = 2
    production.save()
    approval = request_deploy().approval_request
    approval_decide(request=approval, user=approver, verdict="approve")
    assert _refusal(approval, approver).code == "already_decided"
    approval_decide(request=approval, user=second_approver, verdict="approve")
    approval.refresh_from_db()
    assert approval.state == ApprovalRequest.State.APPROVED


def test_deciding_a_closed_request_is_a_conflict(pending, approver, second_approver):
    approval_decide(request=pending, user=approver, verdict="approve")
    refusal = _refusal(pending, second_approver)
    assert (refusal.code, refusal.status) == ("closed", 409)


def test_the_sweep_expires_due_requests(pending):
    assert approval_expire_due() == 0
    assert approval_expire_due(now=pending.expires_at + timedelta(seconds=1)) == 1
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.EXPIRED
    assert approval_expire_due(now=pending.expires_at + timedelta(seconds=2)) == 0


def test_a_changed_digest_voids_pending_requests(pending, v130):
    assert approval_void_changed() == 0
    v130.image_digest = "sha256:" + "0" * 64
    v130.save()
    assert approval_void_changed(release=v130) == 1
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.VOIDED
    assert AuditEvent.objects.get(verb="approval.voided").data["changes"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_twenty_concurrent_approvals_make_one_rollout(
    request_deploy, production, approver, second_approver, monkeypatch
):
    """Two approvers, twenty threads on their own connections: one decision each, one queue."""
    from deployments.tasks import deploys as deploy_tasks

    production.approvals_required = 2
    production.save()
    approval = request_deploy().approval_request
    sent: list[int] = []
    lock = threading.Lock()

    def fake_send(*, args, **kwargs):
        with lock:
            sent.append(args[0])

    monkeypatch.setattr(deploy_tasks.deploy_run, "apply_async", fake_send)
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def approve(user):
        barrier.wait()
        try:
            approval_decide(request=approval, user=user, verdict="approve")
            outcome = "ok"
        except ApprovalRefused as refusal:
            outcome = refusal.code
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [
        threading.Thread(target=approve, args=(approver if i % 2 else second_approver,))
        for i in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count("ok") == 2
    assert set(outcomes) <= {"ok", "already_decided", "closed"}
    assert sorted(Decision.objects.values_list("user__username", flat=True)) == [
        "approver",
        "approver2",
    ]
    assert Deploy.objects.get(pk=approval.deploy_id).state == Deploy.State.QUEUED
    assert sent == [approval.deploy_id]
    assert AuditEvent.objects.filter(verb="deploy.queued").count() == 1
    assert AuditEvent.objects.filter(verb="approval.refused").count() == 18


def test_the_beat_task_expires_due_requests(pending, settings):
    from deployments.tasks.approvals import approval_sweep

    assert "deployments.tasks.approvals.approval_sweep" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    ApprovalRequest.objects.filter(pk=pending.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    approval_sweep()
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.EXPIRED
