"""/metrics: Prometheus text read from the database, behind METRICS_TOKEN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from approvals.models import ApprovalRequest, AuditVerification
from deployments.models import Deploy, Environment, WebhookDelivery, WorkerHeartbeat
from deployments.services.uptime import uptime_probe_round

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

EXPECTED_LABELS = {
    "hotdash_deploys": {"state"},
    "hotdash_deploys_total": {"app", "environment", "kind", "result"},
    "hotdash_deploy_duration_seconds_bucket": {"app", "environment", "kind", "le"},
    "hotdash_deploy_queue_wait_seconds_bucket": {"app", "environment", "le"},
    "hotdash_approval_wait_seconds_bucket": {"app", "environment", "le"},
    "hotdash_pending_approvals": {"app", "environment"},
    "hotdash_environment_up": {"app", "environment"},
    "hotdash_probe_latency_seconds": {"app", "environment"},
    "hotdash_worker_heartbeat_age_seconds": {"worker"},
    "hotdash_deploy_queue_depth": {"environment"},
    "hotdash_webhook_deliveries_total": {"event", "result"},
    "hotdash_audit_chain_ok": set(),
}


def scrape(client, **headers) -> dict[str, list]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


@pytest.fixture
def watched(demo, sandbox, requester):
    """The demo after two probe rounds, with a worker's heartbeat."""
    for minute in range(2):
        uptime_probe_round(now=T0 + timedelta(minutes=minute))
    WorkerHeartbeat.objects.create(
        hostname="celery@w1", seen_at=timezone.now() - timedelta(seconds=40)
    )
    WebhookDelivery.objects.create(
        delivery_id="d-1", event="release", payload={}, state=WebhookDelivery.State.PROCESSED
    )
    AuditVerification.objects.create(finished_at=timezone.now(), ok=True)
    production = demo.environments.get(kind=Environment.Kind.PRODUCTION)
    for state, decided_after in (("approved", timedelta(minutes=3)), ("pending", None)):
        deploy = Deploy.objects.create(
            environment=production,
            reason="ship",
            requested_by=requester,
            state="queued" if state == "approved" else "awaiting_approval",
        )
        ApprovalRequest.objects.create(
            deploy=deploy,
            state=state,
            expires_at=T0 + timedelta(hours=1),
            created_at=T0,
            decided_at=T0 + decided_after if decided_after else None,
        )
    return demo


def test_every_metric_is_present_with_its_labels(client, watched):
    samples = scrape(client)
    for name, labels in EXPECTED_LABELS.items():
        assert name in samples, name
        assert all(set(s.labels) == labels for s in samples[name]), name


def test_values_follow_the_rows(client, watched):
    samples = scrape(client)
    production = watched.environments.get(kind=Environment.Kind.PRODUCTION)
    up = {s.labels["environment"]: s.value for s in samples["hotdash_environment_up"]}
    assert up[production.name] == 1
    [age] = samples["hotdash_worker_heartbeat_age_seconds"]
    assert age.labels == {"worker": "celery@w1"} and age.value >= 40
    succeeded = sum(
        s.value for s in samples["hotdash_deploys_total"] if s.labels["result"] == "succeeded"
    )
    assert succeeded == 8  # the demo's history
    counts = samples["hotdash_deploy_duration_seconds_count"]
    assert sum(s.value for s in counts) >= succeeded
    [pending] = samples["hotdash_pending_approvals"]
    assert pending.labels == {"app": watched.name, "environment": production.name}
    assert pending.value == 1
    [waited] = samples["hotdash_approval_wait_seconds_sum"]
    assert waited.value == 180
    [queued] = samples["hotdash_deploy_queue_depth"]
    assert (queued.labels["environment"], queued.value) == (production.name, 1)
    [delivered] = samples["hotdash_webhook_deliveries_total"]
    assert delivered.labels == {"event": "release", "result": "processed"}
    assert samples["hotdash_audit_chain_ok"][0].value == 1


def test_a_token_is_required_once_set(client, db, settings):
    settings.METRICS_TOKEN = "scrape-token-for-tests"
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-for-tests"})
    assert right.status_code == 200


def test_without_a_token_only_debug_or_the_sandbox_serves_it(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    settings.SANDBOX_MODE = False
    assert client.get("/metrics").status_code == 401
    settings.SANDBOX_MODE = True
    assert client.get("/metrics").status_code == 200
    settings.SANDBOX_MODE = False
    settings.DEBUG = True
    assert client.get("/metrics").status_code == 200
