"""The drawer (GET) and the decision (POST): partial vs page, 422/403/409/success, CSRF."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, AuditEvent, Decision
from deployments.models import Deploy

HTMX = {"HX-Request": "true"}


def test_drawer_is_a_partial_for_htmx_and_a_page_without(client, pending, approver):
    client.force_login(approver)
    url = reverse("approvals:drawer", args=[pending.pk])
    partial = client.get(url, headers=HTMX)
    assert partial.status_code == 200
    html = partial.content.decode()
    assert html.lstrip().startswith("<dialog") and "data-drawer" in html
    assert "<html" not in html
    page = client.get(url).content.decode()
    assert "<html" in page and 'id="approval-drawer"' in page and " open " in page
    assert "no-cache" in partial["Cache-Control"]


def test_drawer_shows_what_a_person_needs(client, pending, approver, v130):
    client.force_login(approver)
    html = client.get(reverse("approvals:drawer", args=[pending.pk]), headers=HTMX).content.decode()
    for expected in (
        "v1.2.0",  # live now
        "v1.3.0",  # will be
        v130.artifact_sha256,
        v130.image_digest,
        "ci/test",
        "Ship the audit export",  # why
        "requester",  # who
        "0 of 1",
        "Still eligible: admin, approver, bob, carol",
        "expires in",
        "not locked",
        "audit export",  # a commit between
        "Batch 1/2",  # the plan
        'value="approve"',
    ):
        assert expected in html, expected


def test_requester_sees_no_approve_button(client, pending, requester):
    client.force_login(requester)
    html = client.get(reverse("approvals:drawer", args=[pending.pk])).content.decode()
    assert 'value="approve"' not in html
    assert "Only approvers may approve" in html


def test_invalid_decision_is_422_with_the_form(client, pending, approver):
    client.force_login(approver)
    response = client.post(
        reverse("approvals:decide", args=[pending.pk]),
        {"decision": "reject", "comment": ""},
        headers=HTMX,
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="decision-form">')
    assert "a reason is required" in html
    assert not Decision.objects.exists()


def test_success_closes_the_drawer_and_announces_it(
    client, pending, approver, django_capture_on_commit_callbacks
):
    client.force_login(approver)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("approvals:decide", args=[pending.pk]),
            {"decision": "approve", "comment": "ship it"},
            headers=HTMX,
        )
    assert response.status_code == 200
    assert response["HX-Reswap"] == "none"
    trigger = json.loads(response["HX-Trigger"])
    assert trigger["approval-decided"] == {
        "approval": pending.pk,
        "deploy": pending.deploy_id,
        "decision": "approve",
    }
    assert "drawer-close" in json.loads(response["HX-Trigger-After-Settle"])
    html = response.content.decode()
    assert 'hx-swap-oob="beforeend:#toasts"' in html
    assert 'id="pending-count"' in html and 'hx-swap-oob="true"' in html
    assert len(callbacks) == 1
    assert Decision.objects.count() == 1
    assert Deploy.objects.get(pk=pending.deploy_id).state == Deploy.State.QUEUED


def test_without_htmx_it_redirects_to_the_queue(client, pending, approver):
    client.force_login(approver)
    response = client.post(
        reverse("approvals:decide", args=[pending.pk]), {"decision": "approve", "comment": ""}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("approvals:queue")


def test_someone_else_decided_first_is_409_with_what_they_decided(
    client, pending, approver, second_approver
):
    client.force_login(approver)
    client.post(
        reverse("approvals:decide", args=[pending.pk]),
        {"decision": "reject", "comment": "broken migration"},
        headers=HTMX,
    )
    client.force_login(second_approver)
    response = client.post(
        reverse("approvals:decide", args=[pending.pk]),
        {"decision": "approve", "comment": ""},
        headers=HTMX,
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "approver" in html and "broken migration" in html and "Rejected" in html
    assert "approval-decided" in json.loads(response["HX-Trigger"])
    assert Decision.objects.count() == 1
    assert AuditEvent.objects.filter(verb="approval.refused").count() == 1


@pytest.mark.parametrize("persona", ["viewer", "requester"])
def test_viewer_and_self_are_refused_403_and_audited(client, pending, request, persona):
    client.force_login(request.getfixturevalue(persona))
    response = client.post(
        reverse("approvals:decide", args=[pending.pk]),
        {"decision": "approve", "comment": ""},
        headers=HTMX,
    )
    assert response.status_code == 403
    assert not Decision.objects.exists()
    event = AuditEvent.objects.get(verb="approval.refused")
    assert event.data["reason"] in ("not_approver", "self_approval")


def test_expired_request_is_409(client, pending, approver):
    ApprovalRequest.objects.filter(pk=pending.pk).update(expires_at=timezone.now() - timedelta(1))
    client.force_login(approver)
    response = client.post(
        reverse("approvals:decide", args=[pending.pk]), {"decision": "approve"}, headers=HTMX
    )
    assert response.status_code == 409
    assert "expired" in response.content.decode()


def test_missing_csrf_token_is_refused_and_audited(pending, approver):
    client = Client(enforce_csrf_checks=True)
    client.force_login(approver)
    response = client.post(
        reverse("approvals:decide", args=[pending.pk]), {"decision": "approve"}, headers=HTMX
    )
    assert response.status_code == 403
    assert b"This form could not be sent" in response.content
    assert not Decision.objects.exists()
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.PENDING
    event = AuditEvent.objects.get(verb="approval.refused")
    assert event.data["reason"] == "csrf"
    assert event.target_id == str(pending.pk)


def test_queue_partial_lists_pending_with_drawer_links(client, pending, viewer):
    client.force_login(viewer)
    response = client.get(reverse("approvals:queue"), headers=HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="pending-list"')
    drawer_url = reverse("approvals:drawer", args=[pending.pk])
    assert f'href="{drawer_url}"' in html and f'hx-get="{drawer_url}"' in html


def test_drawer_query_count_is_bounded(client, pending, approver, django_assert_max_num_queries):
    client.force_login(approver)
    url = reverse("approvals:drawer", args=[pending.pk])
    with django_assert_max_num_queries(20):
        client.get(url, headers=HTMX)


def test_the_nav_badge_refreshes_itself_in_every_open_page(client, pending, viewer):
    client.force_login(viewer)
    html = client.get(reverse("overview")).content.decode()
    assert 'hx-trigger="approval-decided from:body, every 30s"' in html
    badge = client.get(reverse("approvals:pending-count")).content.decode()
    assert ">1</span>" in badge
