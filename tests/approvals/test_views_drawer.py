"""The drawer (GET) and the decision (POST): partial vs page, 422/403/409/success, CSRF."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, AuditEvent, Decision
from approvals.selectors import commits_between
from approvals.services import approval_decide, approval_expire_due, approval_void_changed
from deployments.models import Deploy, Environment, Release
from deployments.services.environments import environment_lock, freeze_window_add
from deployments.services.requests import deploy_request_cancel

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
        "test-unit",
        "Ship the audit export",  # why
        "requester",  # who
        "0 of 1",
        "Still eligible: admin, approver, bob, carol",
        "expires <time",
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


def test_the_nav_badge_refreshes_itself_in_every_open_page(client, pending, approver):
    client.force_login(approver)
    html = client.get(reverse("overview")).content.decode()
    assert 'hx-trigger="approval-decided from:body, every 30s"' in html
    badge = client.get(reverse("approvals:pending-count")).content.decode()
    assert ">1</span>" in badge


def _both_drawers(client, approval) -> list[str]:
    """The drawer as htmx swaps it in, and the page without JavaScript."""
    url = reverse("approvals:drawer", args=[approval.pk])
    return [client.get(url, headers=HTMX).content.decode(), client.get(url).content.decode()]


def test_drawer_shows_the_lock_the_freeze_window_and_the_admin_override(
    client, request_deploy, production, admin_user, approver
):
    now = timezone.now()
    environment_lock(environment=production, actor=admin_user, reason="database migration")
    freeze_window_add(
        environment=production,
        actor=admin_user,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
        reason="quarter close",
    )
    deploy = request_deploy(
        requested_by=admin_user,
        overrides=["lock", "freeze_window"],
        override_reason="hotfix for the outage",
    )
    client.force_login(approver)
    for html in _both_drawers(client, deploy.approval_request):
        assert '<p class="lock">Locked by root since ' in html
        assert "UTC</time>: database migration</p>" in html
        start, end = now - timedelta(hours=1), now + timedelta(hours=2)
        assert f">{start:%Y-%m-%d %H:%M} UTC</time> – <time" in html
        assert f">{end:%Y-%m-%d %H:%M} UTC</time>: quarter close</li>" in html
        assert (
            '<p class="lock" id="override">root overrode the freeze window, the environment lock: '
            "hotfix for the outage</p>" in html
        )


@pytest.fixture
def half_approved(client, request_deploy, production, approver):
    """A production request that needs two approvals and has the approver's one."""
    production.approvals_required = 2
    production.save(update_fields=["approvals_required"])
    approval = request_deploy().approval_request
    client.force_login(approver)
    client.post(
        reverse("approvals:decide", args=[approval.pk]),
        {"decision": "approve", "comment": "fine by me"},
    )
    assert Decision.objects.filter(request=approval).count() == 1
    return approval


def _closing_line(html: str) -> str:
    line = html[html.index('<p id="decided-state">') :]
    return " ".join(line[: line.index("</p>")].split())


def test_a_superseded_request_names_who_replaced_it_and_links_the_newer_deploy(
    client, half_approved, request_deploy, approver, second_approver
):
    newer = request_deploy(reason="ship it with the fix")
    half_approved.refresh_from_db()
    assert half_approved.state == ApprovalRequest.State.PENDING  # a request alone replaces nothing
    for user in (approver, second_approver):
        approval_decide(request=newer.approval_request, user=user, verdict="approve")
    half_approved.refresh_from_db()
    assert half_approved.state == ApprovalRequest.State.SUPERSEDED
    for html in _both_drawers(client, half_approved):
        line = _closing_line(html)
        assert "Superseded" in line and "by <strong>approver2</strong> at " in line
        assert f'superseded by <a href="/deploys/{newer.pk}/">#{newer.pk}</a>' in line
        assert "fine by me" not in line


def test_an_expired_request_was_closed_by_the_system_not_the_last_approver(client, half_approved):
    assert approval_expire_due(now=half_approved.expires_at + timedelta(seconds=1)) == 1
    for html in _both_drawers(client, half_approved):
        line = _closing_line(html)
        assert "Expired" in line and "by <strong>system</strong> at " in line
        assert f"no decision before {half_approved.expires_at:%Y-%m-%d %H:%M} UTC" in line
        assert "approver" not in line and "fine by me" not in line


def test_a_voided_request_was_closed_by_the_system_with_what_changed(client, half_approved, v130):
    Release.objects.filter(pk=v130.pk).update(image_digest="sha256:" + "f" * 64)
    assert approval_void_changed(release=v130) == 1
    for html in _both_drawers(client, half_approved):
        line = _closing_line(html)
        assert "Voided (release changed)" in line and "by <strong>system</strong> at " in line
        assert ": the release changed: image digest sha256:" in line
        assert "approver" not in line


def test_a_cancelled_request_names_the_canceller_and_their_reason(client, half_approved, requester):
    deploy_request_cancel(deploy=half_approved.deploy, actor=requester, reason="wrong branch")
    for html in _both_drawers(client, half_approved):
        line = _closing_line(html)
        assert "Cancelled" in line and "by <strong>requester</strong> at " in line
        assert ": “wrong branch”" in line and "fine by me" not in line


def test_a_rejected_request_names_the_rejecting_approver(client, half_approved, second_approver):
    client.force_login(second_approver)
    client.post(
        reverse("approvals:decide", args=[half_approved.pk]),
        {"decision": "reject", "comment": "migration not reviewed"},
    )
    for html in _both_drawers(client, half_approved):
        line = _closing_line(html)
        assert "Rejected" in line and "by <strong>approver2</strong> at " in line
        assert ": “migration not reviewed”" in line


def test_when_something_else_went_live_the_drawer_says_so_and_counts_from_it(
    client, pending, production, approver, demo
):
    client.force_login(approver)
    html = client.get(reverse("approvals:drawer", args=[pending.pk])).content.decode()
    assert 'id="live-moved"' not in html and "Commits since v1.2.0" in html
    assert "approval drawer" not in html  # a v1.2.0 commit: already live
    # A rollback went live after the request (what the engine writes when it succeeds).
    Environment.objects.filter(pk=production.pk).update(
        current_release=Release.objects.get(app=demo, version="1.1.1"),
        current_image_ref="registry.fly.io/hot-dash:v1.1.1",
    )
    for html in _both_drawers(client, pending):
        assert "<dt>Live now</dt><dd>v1.1.1</dd>" in html
        assert (
            "Live now is v1.1.1, not v1.2.0 as when requested: the commits below are counted "
            "from v1.1.1, what approving would replace." in html
        )
        assert "Commits since v1.1.1" in html and "approval drawer" in html


def test_a_request_to_an_older_release_lists_the_commits_it_takes_away(demo):
    older, live = (Release.objects.get(app=demo, version=v) for v in ("1.1.1", "1.2.0"))
    commits, going_back = commits_between(base=live, target=older)
    assert going_back is True
    assert [c["message"] for c in commits] == [
        "approval drawer (#9)",
        "cache overview query (#10)",
        "explain rollbacks (#11)",
    ]
    assert commits_between(base=live, target=live) == ([], False)


def _rule_for(status: int, config: dict) -> dict:
    """The first htmx responseHandling rule matching ``status``, as htmx picks it."""
    return next(r for r in config["responseHandling"] if re.fullmatch(r["code"], str(status)))


def test_htmx_swaps_403_like_409_and_422(client, viewer):
    client.force_login(viewer)
    html = client.get(reverse("approvals:queue")).content.decode()
    config = json.loads(re.search(r'name="htmx-config" content=\'([^\']*)\'', html)[1])
    for status in (403, 409, 422):
        assert _rule_for(status, config) == {"code": str(status), "swap": True, "error": False}
    assert _rule_for(500, config)["swap"] is False


def test_a_viewer_deciding_in_the_drawer_gets_the_reason_in_place(client, pending, viewer):
    """Someone who lost the approver role after opening the drawer: the form is swapped for
    the reason; nothing is recorded but the refusal."""
    client.force_login(viewer)
    response = client.post(
        reverse("approvals:decide", args=[pending.pk]),
        {"decision": "approve", "comment": "lgtm"},
        headers=HTMX,
    )
    assert response.status_code == 403
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="decision-form">') and "<html" not in html
    assert '<p class="error" role="alert">Only approvers may approve or reject deploys.</p>' in html
    assert 'value="approve"' not in html and 'id="cannot-decide"' not in html
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.PENDING and not Decision.objects.exists()
    assert pending.deploy.state == Deploy.State.AWAITING_APPROVAL
    event = AuditEvent.objects.get(verb="approval.refused")
    assert (event.actor_name, event.data["reason"]) == ("viewer", "not_approver")


def test_without_any_role_the_htmx_403_is_a_fragment_too(client, pending, outsider):
    client.force_login(outsider)
    response = client.post(
        reverse("approvals:decide", args=[pending.pk]), {"decision": "approve"}, headers=HTMX
    )
    assert response.status_code == 403
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" role="alert" id="forbidden">')
    assert "Your role does not allow this." in html and "<html" not in html
    assert "<html" in client.post(reverse("approvals:decide", args=[pending.pk])).content.decode()
    assert not Decision.objects.exists()
