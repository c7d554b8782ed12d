"""Deploy pages, the request form, cancel/abort, the environment page and the profile page."""

from __future__ import annotations

from django.urls import reverse

from approvals.models import ApprovalRequest, AuditEvent
from deployments.models import ApiToken, Deploy, DeployLog, DeployStep
from deployments.services.tokens import api_token_authenticate

HTMX = {"HX-Request": "true"}


def test_request_form_page_and_drawer(client, sandbox, production, v130, requester):
    client.force_login(requester)
    url = reverse("deployments:deploy-new") + f"?release={v130.pk}&environment={production.pk}"
    page = client.get(url).content.decode()
    assert "<html" in page and f'<option value="{v130.pk}" selected>' in page
    assert "runs <strong>v1.2.0</strong>" in page
    back = reverse("deployments:environment-detail", args=[production.pk])
    assert f'<a href="{back}">← hot-dash/production</a>' in page
    assert client.get(reverse("deployments:deploy-new")).content.decode().count("← Deploys") == 1
    drawer = client.get(url, headers=HTMX).content.decode()
    assert drawer.lstrip().startswith('<dialog id="request-drawer" data-drawer')


def test_requesting_from_the_form_shows_the_plan(client, sandbox, production, v130, requester):
    client.force_login(requester)
    response = client.post(
        reverse("deployments:deploy-new"),
        {"environment": production.pk, "release": v130.pk, "reason": "ship it"},
    )
    deploy = Deploy.objects.get(reason="ship it")
    assert response["Location"] == reverse("deployments:deploy-detail", args=[deploy.pk])
    page = client.get(response["Location"]).content.decode()
    assert "Awaiting approval" in page and "Batch 2/2" in page and "Review approval" in page
    assert "every 2s" in page  # polls while not terminal


def test_a_refused_request_says_why_and_creates_nothing(
    client, sandbox, production, v130, requester, admin_user
):
    from deployments.services.environments import environment_lock

    environment_lock(environment=production, actor=admin_user, reason="incident 7")
    client.force_login(requester)
    response = client.post(
        reverse("deployments:deploy-new"),
        {"environment": production.pk, "release": v130.pk, "reason": "ship it"},
        headers=HTMX,
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="request-form">')
    assert "incident 7" in html and "root" in html
    # A sentence for people; the code is only a machine-readable attribute.
    assert 'data-code="environment_locked"' in html and "Refused (" not in html
    assert html.count("environment_locked") == 1
    assert not Deploy.objects.filter(reason="ship it").exists()


def test_htmx_request_redirects_the_client(client, sandbox, staging, v130, requester):
    client.force_login(requester)
    response = client.post(
        reverse("deployments:deploy-new"),
        {
            "environment": staging.pk,
            "release": v130.pk,
            "reason": "to staging",
            "confirm_no_op": "on",  # staging runs v1.3.0 already
        },
        headers=HTMX,
    )
    deploy = Deploy.objects.get(reason="to staging")
    assert response["HX-Redirect"] == reverse("deployments:deploy-detail", args=[deploy.pk])
    assert deploy.state == Deploy.State.QUEUED


def test_deploy_page_polls_until_terminal_and_shows_progress(client, pending, viewer):
    deploy = pending.deploy
    step = deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).first()
    machine = step.data["machines"][0]
    step.data["updated"] = [machine]
    step.state = DeployStep.State.RUNNING
    step.save()
    DeployLog.objects.create(deploy=deploy, message="Updating machine " + machine)
    client.force_login(viewer)
    url = reverse("deployments:deploy-detail", args=[deploy.pk])
    live = client.get(url, headers=HTMX).content.decode()
    assert live.lstrip().startswith('<section id="deploy-live"')
    assert 'aria-valuenow="50"' in live and "Updating machine" in live
    assert "every 2s" in live
    Deploy.objects.filter(pk=deploy.pk).update(state=Deploy.State.SUCCEEDED)
    assert "every 2s" not in client.get(url, headers=HTMX).content.decode()


def test_queue_position_is_shown(client, request_deploy, staging, viewer):
    first = request_deploy(environment=staging, reason="first")
    second = request_deploy(environment=staging, reason="second")
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-detail", args=[second.pk])).content.decode()
    assert "position 2" in html
    html = client.get(reverse("deployments:deploy-detail", args=[first.pk])).content.decode()
    assert "position 1" in html


def test_requester_cancels_and_the_approval_closes(client, pending, requester):
    client.force_login(requester)
    response = client.post(
        reverse("deployments:deploy-cancel", args=[pending.deploy_id]), {"reason": "wrong tag"}
    )
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.state == ApprovalRequest.State.CANCELLED
    assert pending.deploy.state == Deploy.State.CANCELLED
    assert {"deploy.cancelled", "approval.cancelled"} <= set(
        AuditEvent.objects.values_list("verb", flat=True)
    )


def test_abort_of_a_deploy_that_is_not_running_says_so(client, pending, approver):
    client.force_login(approver)
    response = client.post(
        reverse("deployments:deploy-abort", args=[pending.deploy_id]),
        {"reason": "stop"},
        follow=True,
    )
    assert "only a running deploy can be aborted" in response.content.decode()


def test_environment_page_locks_and_unlocks(client, sandbox, production, admin_user):
    client.force_login(admin_user)
    url = reverse("deployments:environment-detail", args=[production.pk])
    page = client.get(url).content.decode()
    assert "Deploy v1.3.0 to production…" in page and "Unlocked" in page
    client.post(
        reverse("deployments:environment-lock", args=[production.pk]),
        {"action": "lock", "reason": "incident 9"},
    )
    assert "incident 9" in client.get(url).content.decode()
    client.post(
        reverse("deployments:environment-lock", args=[production.pk]),
        {"action": "unlock", "reason": "resolved"},
    )
    production.refresh_from_db()
    assert not production.is_locked
    verbs = list(AuditEvent.objects.values_list("verb", flat=True))
    assert "environment.locked" in verbs and "environment.unlocked" in verbs
    machines = client.get(reverse("deployments:environment-machines", args=[production.pk]))
    assert machines.content.decode().count('class="mono"') >= 2


def test_freeze_windows_are_added_and_removed(client, production, admin_user):
    client.force_login(admin_user)
    client.post(
        reverse("deployments:freeze-window-add", args=[production.pk]),
        {"starts_at": "2030-12-24 00:00", "ends_at": "2030-12-27 00:00", "reason": "holidays"},
    )
    window = production.freeze_windows.get()
    assert window.reason == "holidays"
    client.post(reverse("deployments:freeze-window-remove", args=[production.pk, window.pk]))
    assert not production.freeze_windows.exists()


def test_profile_creates_a_token_shown_once_and_revokes_it(client, requester):
    client.force_login(requester)
    html = client.post(reverse("deployments:token-create"), {"name": "ci"}).content.decode()
    token = ApiToken.objects.get(user=requester)
    raw = html.split("<p><code>")[1].split("</code>")[0]
    assert raw.startswith("hd_") and token.token_hash != raw
    assert api_token_authenticate(raw_token=raw) == requester
    assert raw not in client.get(reverse("deployments:profile")).content.decode()
    client.post(reverse("deployments:token-revoke", args=[token.pk]))
    assert api_token_authenticate(raw_token=raw) is None


def test_deploy_list_links_pending_deploys_to_the_drawer(client, pending, viewer):
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-list"), headers=HTMX).content.decode()
    assert html.lstrip().startswith('<section id="deploy-table"')
    assert f'hx-get="{reverse("approvals:deploy-drawer", args=[pending.deploy_id])}"' in html
    assert "approval-decided from:body" in html


def test_the_live_region_offers_abort_once_running(client, pending, approver):
    client.force_login(approver)
    url = reverse("deployments:deploy-detail", args=[pending.deploy_id])
    live = client.get(url, headers=HTMX).content.decode()
    assert "Cancel deploy" in live and "Abort rollout" not in live
    Deploy.objects.filter(pk=pending.deploy_id).update(state=Deploy.State.RUNNING)
    live = client.get(url, headers=HTMX).content.decode()
    assert "Abort rollout" in live and "Cancel deploy" not in live


def test_admin_overrides_a_lock_from_the_form(client, sandbox, production, v130, admin_user):
    from deployments.services.environments import environment_lock

    environment_lock(environment=production, actor=admin_user, reason="incident 7")
    client.force_login(admin_user)
    form = client.get(reverse("deployments:deploy-new")).content.decode()
    assert 'name="overrides"' in form
    client.post(
        reverse("deployments:deploy-new"),
        {
            "environment": production.pk,
            "release": v130.pk,
            "reason": "hotfix",
            "overrides": ["lock"],
            "override_reason": "security fix cannot wait",
        },
    )
    deploy = Deploy.objects.get(reason="hotfix")
    assert deploy.overrides == ["lock"]
    page = client.get(reverse("deployments:deploy-detail", args=[deploy.pk])).content.decode()
    assert "security fix cannot wait" in page


def test_the_override_fields_are_not_offered_to_deployers(client, requester):
    client.force_login(requester)
    assert 'name="overrides"' not in client.get(reverse("deployments:deploy-new")).content.decode()


def test_a_rejected_deploy_shows_its_plan_as_not_run(client, pending, approver, viewer):
    from approvals.services import approval_decide

    approval_decide(request=pending, user=approver, verdict="reject", comment="not today")
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-detail", args=[pending.deploy_id])).content
    html = html.decode()
    plan = html[html.index("<h2>Plan</h2>") : html.index("<h2>Log</h2>")]
    assert "Not run" in plan and "Pending" not in plan
    assert 'role="progressbar"' not in plan


def test_a_finished_deploy_without_log_lines_does_not_promise_more(client, pending, viewer):
    client.force_login(viewer)
    url = reverse("deployments:deploy-detail", args=[pending.deploy_id])
    assert "No log lines yet." in client.get(url).content.decode()
    Deploy.objects.filter(pk=pending.deploy_id).update(state=Deploy.State.SUCCEEDED)
    html = client.get(url).content.decode()
    assert "No log lines were recorded." in html and "No log lines yet." not in html


def test_without_javascript_the_deploy_page_says_to_reload(client, pending, viewer):
    hint = "This page updates itself with JavaScript; reload to see the latest state."
    client.force_login(viewer)
    url = reverse("deployments:deploy-detail", args=[pending.deploy_id])
    html = client.get(url).content.decode()
    assert f'<noscript><p class="muted" id="no-script-hint">{hint}</p></noscript>' in html
    Deploy.objects.filter(pk=pending.deploy_id).update(state=Deploy.State.SUCCEEDED)
    assert hint not in client.get(url).content.decode()
