"""approval_decide and the expiry/void sweeps: policy, state, audit and exactly-once queueing."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, AuditEvent, Decision
from approvals.services import (
    approval_decide,
    approval_expire_due,
    approval_void_changed,
)
from deployments.models import Deploy
from deployments.services.tokens import api_token_create
from deployments.tasks.deploys import deploy_run
from hotdash.api import refusal_status
from hotdash.celery import app as celery_app
from hotdash.errors import Refused
from tests.engine.conftest import Driver, fast_health, pending_token


def _refusal(pending, user, verdict="approve", comment=""):
    decisions = Decision.objects.count()
    with pytest.raises(Refused) as caught:
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
    assert refusal_status(refusal.code) == 422
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
    assert (refusal.code, refusal_status(refusal.code)) == ("self_approval", 403)
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
    assert (refusal.code, refusal_status(refusal.code)) == ("closed", 409)


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
    request_deploy, production, approver, second_approver, sandbox, time_machine, settings
):
    """Two approvers send twenty approvals at once, half through the drawer and half through
    the API, each request on its own thread and database connection: one decision each, one
    run message in the broker, and that message rolls each machine out exactly once."""
    settings.DEPLOY_POLL_SECONDS = settings.DEPLOY_QUEUE_POLL_SECONDS = 1
    time_machine.move_to(sandbox.clock.now(), tick=False)
    production.approvals_required = 2
    production.save()
    fast_health(production)
    machines = {m["id"] for m in sandbox.world.fly.summary()[production.fly_app_name]}
    with celery_app.connection_for_write() as broker:
        queue = broker.SimpleQueue(celery_app.conf.task_default_queue)
        queue.clear()  # left by earlier runs' committed tests
        approval = request_deploy().approval_request
        drawer_url = reverse("approvals:decide", args=[approval.pk])
        api_url = f"/api/v1/deploys/{approval.deploy_id}/decisions"
        queue_url = reverse("approvals:queue")  # where the drawer's form lands after deciding
        approvers = [approver, second_approver]
        tokens = {u.pk: api_token_create(user=u, name="concurrency")[1] for u in approvers}
        clients = []
        for i in range(20):
            clients.append(Client())
            if i < 10:  # the drawer's form, signed in
                clients[i].force_login(approvers[i % 2])
        barrier = threading.Barrier(20)
        lock = threading.Lock()
        outcomes: list[tuple[str, str | int]] = []

        def approve(i: int) -> None:
            user = approvers[i % 2]
            barrier.wait()
            try:
                if i < 10:
                    response = clients[i].post(drawer_url, {"decision": "approve", "comment": ""})
                else:
                    response = clients[i].post(
                        api_url,
                        json.dumps({"decision": "approve"}),
                        content_type="application/json",
                        headers={"Authorization": f"Bearer {tokens[user.pk]}"},
                    )
            finally:
                connection.close()
            ok = response.status_code == 201 or response.get("Location") == queue_url
            with lock:
                outcomes.append((user.username, "ok" if ok else response.status_code))

        threads = [threading.Thread(target=approve, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert len(outcomes) == 20
        decided = sorted(user for user, outcome in outcomes if outcome == "ok")
        assert decided == ["approver", "approver2"]
        assert [outcome for _, outcome in outcomes].count(409) == 18
        assert sorted(Decision.objects.values_list("user__username", flat=True)) == decided
        refused = AuditEvent.objects.filter(verb="approval.refused")
        assert refused.count() == 18
        assert {e.data["reason"] for e in refused} <= {"closed", "already_decided"}
        assert AuditEvent.objects.filter(verb="deploy.queued").count() == 1

        # What a worker would receive: exactly one deploy_run, for this deploy's pending run.
        deploy = Deploy.objects.get(pk=approval.deploy_id)
        assert deploy.state == Deploy.State.QUEUED
        runs = []
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                break
            if message.headers["task"] == deploy_run.name:
                runs.append(message.payload[0])  # protocol 2: (args, kwargs, embed)
            message.ack()
        queue.close()
    assert len(runs) == 1 and runs[0][:2] == [deploy.pk, pending_token(deploy)]

    deploy = Driver(sandbox=sandbox, traveller=time_machine, published=runs).run(deploy)

    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    update = rf"/apps/{production.fly_app_name}/machines/[0-9a-f]+"
    updated = [r.path.rsplit("/", 1)[1] for r in sandbox.calls("POST", update, service="fly")]
    assert sorted(updated) == sorted(machines)


def test_the_beat_task_expires_due_requests(pending, settings):
    from approvals.tasks import approval_sweep

    assert "deployments.tasks.approvals.approval_sweep" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    ApprovalRequest.objects.filter(pk=pending.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    approval_sweep()
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.EXPIRED
