"""POST /api/v1/rollbacks: the rollback form's rules and confirmation, as JSON (every refusal
code is provoked in test_openapi_errors.py; here, what a success creates and who may)."""

from __future__ import annotations

from approvals.models import AuditEvent
from deployments.models import Deploy, Environment

ROLLBACK = {
    "app": "hot-dash",
    "environment": "production",
    "version": "v1.1.1",
    "reason": "5xx after 1.2.0",
    "confirm": "hot-dash",
}


def test_an_approver_rolls_production_back_on_the_fast_path(api, approver):
    response = api(approver, "post", "/rollbacks", ROLLBACK)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["state"], body["version"], body["previous_version"]) == (
        "rollback",
        "queued",
        "1.1.1",
        "1.2.0",
    )
    assert body["fast_path"] is True and body["emergency"] is False
    assert body["rollback_hold"]["summary"] == (
        "Will lock production and mark v1.2.0 bad when it starts."
    )
    assert len([s for s in body["plan"] if s["kind"] == "update_batch"]) == 2
    event = AuditEvent.objects.get(verb="rollback.requested", target_id=str(body["id"]))
    assert event.actor_name == "approver" and event.data["reason"] == "5xx after 1.2.0"


def test_a_deployer_s_rollback_waits_for_approval(api, requester):
    response = api(requester, "post", "/rollbacks", ROLLBACK)

    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "awaiting_approval" and body["fast_path"] is False
    assert body["approval"]["required"] == 1


def test_production_needs_the_app_name_and_staging_does_not(api, demo, approver):
    unconfirmed = {**ROLLBACK, "confirm": ""}
    response = api(approver, "post", "/rollbacks", unconfirmed)
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "confirmation_required",
        "message": "Rolling back production: type the app name (hot-dash) to confirm.",
    }
    staging = {**unconfirmed, "environment": "staging", "version": "1.2.0"}
    assert api(approver, "post", "/rollbacks", staging).status_code == 201
    assert Deploy.objects.filter(kind=Deploy.Kind.ROLLBACK).count() == 1


def test_an_emergency_rollback_goes_out_in_one_batch_at_once(api, demo, approver):
    demo.environments.filter(name="production").update(health=Environment.Health.FAILING)

    response = api(approver, "post", "/rollbacks", {**ROLLBACK, "emergency": True})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["emergency"] is True and body["state"] == "queued"
    assert [s["kind"] for s in body["plan"]] == [
        "verify_artifact",
        "github_deployment",
        "update_batch",
        "github_status",
    ]
    assert len(body["plan"][2]["machines"]) == 2
    event = AuditEvent.objects.get(verb="rollback.emergency", target_id=str(body["id"]))
    assert event.data["trouble"] == "hot-dash/production's health is failing."


def test_an_emergency_needs_the_app_name_on_staging_too(api, demo, approver):
    demo.environments.filter(name="staging").update(health=Environment.Health.FAILING)
    body = {**ROLLBACK, "environment": "staging", "version": "1.3.0-rc.1", "emergency": True}

    response = api(approver, "post", "/rollbacks", {**body, "confirm": ""})

    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "Emergency rollback: type the app name (hot-dash) to confirm."
    )
    assert api(approver, "post", "/rollbacks", body).status_code == 201


def test_viewers_and_outsiders_may_not_roll_back(api, viewer, outsider):
    for user in (viewer, outsider):
        response = api(user, "post", "/rollbacks", ROLLBACK)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
    assert api(None, "post", "/rollbacks", ROLLBACK).status_code == 401
    assert not Deploy.objects.filter(kind=Deploy.Kind.ROLLBACK).exists()
