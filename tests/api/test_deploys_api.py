"""/api/v1/deploys: request, read, decide, cancel; every response checked against the served
OpenAPI schema (the ``api`` fixture, tests/api/conftest.py)."""

from __future__ import annotations

from django.core.management import call_command

from approvals.models import AuditEvent, Decision
from deployments.models import Deploy
from deployments.services.environments import environment_lock
from tests.engine.conftest import rollback_to_111

REQUEST = {"app": "hot-dash", "environment": "production", "version": "1.3.0", "reason": "ship"}


def test_request_returns_the_plan_before_approval(api, requester):
    response = api(requester, "post", "/deploys", REQUEST)
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "awaiting_approval"
    assert [step["kind"] for step in body["plan"]][:2] == ["verify_artifact", "github_deployment"]
    assert sum(step["kind"] == "update_batch" for step in body["plan"]) == 2
    assert body["approval"]["required"] == 1 and body["approval"]["approvals"] == 0


def test_refusals_are_machine_readable(api, demo, requester, viewer, admin_user):
    production = demo.environments.get(name="production")
    environment_lock(environment=production, actor=admin_user, reason="incident 3")
    response = api(requester, "post", "/deploys", REQUEST)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "environment_locked"
    assert (
        error["details"]["locked_by"] == "root" and error["details"]["lock_reason"] == "incident 3"
    )
    assert api(viewer, "post", "/deploys", REQUEST).json()["error"]["code"] == "forbidden"
    missing = api(requester, "post", "/deploys", {"app": "hot-dash"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "missing_fields")
    unknown = api(requester, "post", "/deploys", {**REQUEST, "version": "9.9.9"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_release")
    assert not Deploy.objects.filter(reason="ship").exists()


def test_decisions_follow_the_drawer_policy(api, requester, approver, second_approver):
    deploy_id = api(requester, "post", "/deploys", REQUEST).json()["id"]
    own = api(requester, "post", f"/deploys/{deploy_id}/decisions", {"decision": "approve"})
    assert (own.status_code, own.json()["error"]["code"]) == (403, "not_approver")
    reject = api(approver, "post", f"/deploys/{deploy_id}/decisions", {"decision": "reject"})
    assert (reject.status_code, reject.json()["error"]["code"]) == (422, "comment_required")
    ok = api(approver, "post", f"/deploys/{deploy_id}/decisions", {"decision": "approve"})
    assert ok.status_code == 201 and ok.json()["state"] == "queued"
    late = api(second_approver, "post", f"/deploys/{deploy_id}/decisions", {"decision": "approve"})
    assert late.status_code == 409
    error = late.json()["error"]
    assert error["code"] == "closed"
    assert error["details"]["approval"]["decisions"][0]["user"] == "approver"
    assert Decision.objects.count() == 1
    assert AuditEvent.objects.filter(verb="approval.refused").count() == 3


def test_get_and_cancel(api, requester, viewer):
    deploy_id = api(requester, "post", "/deploys", REQUEST).json()["id"]
    got = api(viewer, "get", f"/deploys/{deploy_id}")
    assert got.status_code == 200 and got.json()["id"] == deploy_id
    denied = api(viewer, "post", f"/deploys/{deploy_id}/cancel", {"reason": "no"})
    assert denied.status_code == 403
    cancelled = api(requester, "post", f"/deploys/{deploy_id}/cancel", {"reason": "wrong tag"})
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["approval"]["state"] == "cancelled"
    again = api(requester, "post", f"/deploys/{deploy_id}/cancel", {"reason": "again"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_cancellable")
    assert api(viewer, "get", "/deploys/999999").status_code == 404


def test_unauthenticated_calls_are_401(client, db):
    response = client.post("/api/v1/deploys", data="{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_create_api_token_prints_only_the_token(demo, capsys):
    call_command("create_api_token", "alice")
    out = capsys.readouterr().out.strip()
    assert out.startswith("hd_") and "\n" not in out


def test_a_rollback_says_what_it_will_lock_and_mark_bad_and_that_it_has_not(
    api, demo, requester, approver
):
    rollback = rollback_to_111(demo.environments.get(name="production"), requester)
    body = api(approver, "get", f"/deploys/{rollback.pk}").json()
    assert body["rollback_hold"] == {
        "environment": "production",
        "marks_bad": "v1.2.0",
        "applied": False,
        "summary": "Will lock production and mark v1.2.0 bad when approved.",
    }
    approved = api(approver, "post", f"/deploys/{rollback.pk}/decisions", {"decision": "approve"})
    assert approved.json()["rollback_hold"]["summary"] == (
        "Will lock production and mark v1.2.0 bad when it starts."
    )
    cancelled = api(requester, "post", f"/deploys/{rollback.pk}/cancel", {"reason": "fixed"})
    assert cancelled.json()["rollback_hold"] == {
        "environment": "production",
        "marks_bad": "v1.2.0",
        "applied": False,
        "summary": "Did not lock production or mark v1.2.0 bad: it never started.",
    }
    plain = api(requester, "post", "/deploys", REQUEST).json()
    assert plain["rollback_hold"] is None
