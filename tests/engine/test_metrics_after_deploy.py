"""After a real approved deploy against the sandbox, /metrics names every metric of the
monitoring issue with its labels, the Fly and GitHub requests the deploy made among them."""

from __future__ import annotations

from django.test import TestCase
from prometheus_client.parser import text_string_to_metric_families

from approvals.audit import audit_chain_verify
from approvals.services import approval_decide
from deployments.models import Deploy, WebhookDelivery
from deployments.services.ops import worker_heartbeat_record
from deployments.services.requests import deploy_request
from deployments.services.upstream_metrics import upstream_metrics_store
from deployments.services.uptime import uptime_probe_round
from hotdash.integrations import upstream_tally

ISSUE_METRICS = {
    "hotdash_deploys_total": {"app", "environment", "kind", "result"},
    "hotdash_deploy_duration_seconds_bucket": {"app", "environment", "kind", "le"},
    "hotdash_approval_wait_seconds_bucket": {"app", "environment", "le"},
    "hotdash_deploy_queue_depth": {"environment"},
    "hotdash_pending_approvals": {"app", "environment"},
    "hotdash_environment_up": {"app", "environment"},
    "hotdash_probe_latency_seconds": {"app", "environment"},
    "hotdash_upstream_requests_total": {"provider", "method", "status"},
    "hotdash_upstream_request_duration_seconds_bucket": {"provider", "le"},
    "hotdash_webhook_deliveries_total": {"event", "result"},
    "hotdash_worker_heartbeat_age_seconds": {"worker"},
    "hotdash_audit_chain_ok": set(),
}


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_every_issue_metric_is_present_after_a_deploy(
    client, production, release_130, requester, approver, driver, sandbox
):
    upstream_tally.drain()  # what earlier tests in this process counted
    with TestCase.captureOnCommitCallbacks(execute=True):
        deploy = deploy_request(
            environment=production, release=release_130, requested_by=requester, reason="ship"
        )
        approval_decide(request=deploy.approval_request, user=approver, verdict="approve")
    deploy = driver.run(deploy)
    assert deploy.state == Deploy.State.SUCCEEDED, deploy.error
    # What else the issue's metrics count: one more deploy waiting for approval and one
    # queued, two probe rounds, a worker's heartbeat, a verification, a GitHub delivery.
    with TestCase.captureOnCommitCallbacks(execute=False):
        waiting = deploy_request(
            environment=production,
            release=release_130,
            requested_by=requester,
            reason="again",
            confirm_no_op=True,
        )
    Deploy.objects.filter(pk=waiting.pk).update(state=Deploy.State.QUEUED)
    deploy_request(
        environment=production,
        release=release_130,
        requested_by=requester,
        reason="3",
        confirm_no_op=True,
    )
    uptime_probe_round()
    uptime_probe_round()
    worker_heartbeat_record(hostname="celery@w1")
    audit_chain_verify()
    WebhookDelivery.objects.create(delivery_id="d-1", event="release", payload={})
    calls = len(sandbox.calls())
    assert upstream_metrics_store(every=0) == calls  # every request the deploy made

    samples = scrape(client)
    for name, labels in ISSUE_METRICS.items():
        assert name in samples, name
        assert all(set(s.labels) == labels for s in samples[name]), name

    requests = samples["hotdash_upstream_requests_total"]
    assert sum(s.value for s in requests) == calls
    providers = {s.labels["provider"] for s in requests}
    assert providers == {"fly", "github"}
    assert {"GET", "POST"} <= {s.labels["method"] for s in requests}
    for provider in providers:
        [count] = [
            s
            for s in samples["hotdash_upstream_request_duration_seconds_count"]
            if s.labels["provider"] == provider
        ]
        made = sum(s.value for s in requests if s.labels["provider"] == provider)
        assert count.value == made
        [inf] = [
            s
            for s in samples["hotdash_upstream_request_duration_seconds_bucket"]
            if s.labels == {"provider": provider, "le": "+Inf"}
        ]
        assert inf.value == made
    [finished] = [
        s
        for s in samples["hotdash_deploys_total"]
        if s.labels["kind"] == "deploy"
        and s.labels["result"] == "succeeded"
        and s.labels["environment"] == "production"
    ]
    assert finished.value >= 1
