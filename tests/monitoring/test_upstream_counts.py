"""Upstream request counts: kept in memory per process, added to the database after a web
request or a task (at most every few seconds), and kept when the database refuses them."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from deployments.models import UpstreamDurationBucket, UpstreamRequestCount
from deployments.services import upstream_metrics
from deployments.services.upstream_metrics import upstream_metrics_store
from deployments.tasks.ops import worker_heartbeat
from hotdash.integrations import upstream_tally
from hotdash.integrations.fly import fly_client


@pytest.fixture
def fresh_tally():
    upstream_tally.drain()
    yield
    upstream_tally.drain()


def counts() -> dict[tuple[str, str, str], int]:
    return {
        (row.provider, row.method, row.status): row.count
        for row in UpstreamRequestCount.objects.all()
    }


def test_each_request_is_counted_with_its_status(db, sandbox, fresh_tally):
    with fly_client() as fly:
        fly.list_apps("personal")
        assert fly.find_app("no-such-app") is None  # a 404, answered
    assert upstream_metrics_store(every=0) == 2
    assert counts() == {("fly", "GET", "200"): 1, ("fly", "GET", "404"): 1}
    assert sum(b.count for b in UpstreamDurationBucket.objects.filter(provider="fly")) == 2
    with fly_client() as fly:
        fly.list_apps("personal")
    upstream_metrics_store(every=0)
    assert counts()[("fly", "GET", "200")] == 2  # added to, not replaced


def test_a_web_request_and_a_task_store_the_counts(client, db, monkeypatch, fresh_tally):
    monkeypatch.setattr(upstream_metrics, "FLUSH_EVERY_SECONDS", 0)
    upstream_tally.observe(provider="github", method="GET", status="200", seconds=0.2)
    client.get("/health")
    assert counts() == {("github", "GET", "200"): 1}
    upstream_tally.observe(provider="github", method="POST", status="error", seconds=31)
    worker_heartbeat.apply()
    assert counts()[("github", "POST", "error")] == 1
    [slowest] = UpstreamDurationBucket.objects.filter(bucket=len(upstream_tally.DURATION_BUCKETS))
    assert slowest.count == 1


def test_counts_are_kept_when_the_database_refuses_them(db, monkeypatch, fresh_tally):
    upstream_tally.observe(provider="fly", method="GET", status="200", seconds=0.01)

    def refuse(*args, **kwargs):
        raise DatabaseError("database restarting")

    with monkeypatch.context() as patched:
        patched.setattr(UpstreamRequestCount.objects, "get_or_create", refuse)
        assert upstream_metrics_store(every=0) == 0
    assert upstream_metrics_store(every=0) == 1
    assert counts() == {("fly", "GET", "200"): 1}


def test_a_store_waits_for_its_interval(db, fresh_tally):
    upstream_tally.observe(provider="fly", method="GET", status="200", seconds=0.01)
    assert upstream_metrics_store(every=3600) == 0  # drained just now by the fixture
    assert upstream_metrics_store(every=0) == 1
