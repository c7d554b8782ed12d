"""What /metrics exposes, read from the database at scrape time.

Web processes serve /metrics while workers carry out deploys, probes and notifications, each in
its own process. Every figure here is computed from the rows those processes write, so any web
process answers for all of them with no shared multiprocess directory, and a restart loses
nothing: counters are counts of durable rows (deploys and webhook deliveries are never deleted),
histograms are built from their timestamps. Requests to Fly and GitHub are counted in memory
by each process and added to the database every few seconds (services/upstream_metrics.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from approvals.models import ApprovalRequest, AuditVerification
from deployments.models import (
    Deploy,
    Environment,
    Notification,
    Preview,
    Probe,
    UpstreamDurationBucket,
    UpstreamRequestCount,
    WebhookDelivery,
    WorkerHeartbeat,
)
from hotdash.integrations.upstream_tally import DURATION_BUCKETS as UPSTREAM_BUCKETS

DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
WAIT_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)


def _histogram(
    name: str, documentation: str, labels: list[str], series: Iterable[tuple[tuple, float]], buckets
) -> HistogramMetricFamily:
    """A histogram of ``(label values, observed seconds)`` pairs."""
    observed: dict[tuple, list[float]] = defaultdict(list)
    for label_values, seconds in series:
        observed[label_values].append(max(0.0, seconds))
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for label_values, values in sorted(observed.items()):
        cumulative = [(str(float(b)), sum(1 for v in values if v <= b)) for b in buckets]
        cumulative.append(("+Inf", len(values)))
        family.add_metric(list(label_values), cumulative, sum_value=sum(values))
    return family


def _counted(family, rows: QuerySet, fields: tuple[str, ...]):
    """``family`` with one sample per group of ``rows`` (a ``values(*fields)`` queryset): the
    group's field values as label values, its row count as the value."""
    for row in rows.annotate(total=Count("id")).order_by(*fields):
        family.add_metric([str(row[name]) for name in fields], row["total"])
    return family


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _deploys() -> Iterator[Metric]:
    yield _counted(
        GaugeMetricFamily("hotdash_deploys", "Deploys by state.", labels=["state"]),
        Deploy.objects.values("state"),
        ("state",),
    )
    finished = Deploy.objects.filter(state__in=Deploy.TERMINAL_STATES).values(
        "state", "kind", app=F("environment__app__name"), env=F("environment__name")
    )
    yield _counted(
        CounterMetricFamily(
            "hotdash_deploys",
            "Deploys that ended, by how they ended.",
            labels=["app", "environment", "kind", "result"],
        ),
        finished,
        ("app", "env", "kind", "state"),
    )
    timed = Deploy.objects.filter(started_at__isnull=False).values_list(
        "environment__app__name",
        "environment__name",
        "kind",
        "queued_at",
        "started_at",
        "finished_at",
    )
    rows = list(timed)
    yield _histogram(
        "hotdash_deploy_duration_seconds",
        "How long deploys ran, from the worker's start to their end.",
        ["app", "environment", "kind"],
        (
            ((app, env, kind), s)
            for app, env, kind, _, started, finished in rows
            if (s := _seconds(started, finished)) is not None
        ),
        DURATION_BUCKETS,
    )
    yield _histogram(
        "hotdash_deploy_queue_wait_seconds",
        "How long deploys waited in the queue for a worker.",
        ["app", "environment"],
        (
            ((app, env), s)
            for app, env, _, queued, started, _ in rows
            if (s := _seconds(queued, started)) is not None
        ),
        WAIT_BUCKETS,
    )
    yield _counted(
        GaugeMetricFamily(
            "hotdash_deploy_queue_depth", "Deploys queued for a worker.", labels=["environment"]
        ),
        Deploy.objects.filter(state=Deploy.State.QUEUED).values(env=F("environment__name")),
        ("env",),
    )


def _approvals() -> Iterator[Metric]:
    requests = ApprovalRequest.objects.values(
        app=F("deploy__environment__app__name"), env=F("deploy__environment__name")
    )
    yield _counted(
        GaugeMetricFamily(
            "hotdash_pending_approvals",
            "Approval requests waiting for a decision.",
            labels=["app", "environment"],
        ),
        requests.filter(state=ApprovalRequest.State.PENDING),
        ("app", "env"),
    )
    decisions = ApprovalRequest.objects.filter(decided_at__isnull=False).values_list(
        "deploy__environment__app__name", "deploy__environment__name", "created_at", "decided_at"
    )
    yield _histogram(
        "hotdash_approval_wait_seconds",
        "How long approval requests waited for their decision.",
        ["app", "environment"],
        (((app, env), _seconds(created, decided)) for app, env, created, decided in decisions),
        WAIT_BUCKETS,
    )


def _uptime() -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "hotdash_environment_up",
        "1 while the uptime probes find the environment up, 0 while down.",
        labels=["app", "environment"],
    )
    latency = GaugeMetricFamily(
        "hotdash_probe_latency_seconds",
        "How long the environment's last uptime probe took.",
        labels=["app", "environment"],
    )
    last = Probe.objects.filter(environment=OuterRef("pk")).order_by("-checked_at", "-id")
    environments = Environment.objects.annotate(
        last_latency_ms=Subquery(last.values("latency_ms")[:1])
    ).values_list("app__name", "name", "uptime", "last_latency_ms")
    for app, env, uptime, latency_ms in environments.order_by("app__name", "name"):
        if uptime != Environment.Uptime.UNKNOWN:
            up.add_metric([app, env], 1 if uptime == Environment.Uptime.UP else 0)
        if latency_ms is not None:
            latency.add_metric([app, env], latency_ms / 1000)
    yield up
    yield latency


def _deliveries_and_notifications() -> Iterator[Metric]:
    yield _counted(
        CounterMetricFamily(
            "hotdash_webhook_deliveries",
            "GitHub webhook deliveries accepted, by event and outcome.",
            labels=["event", "result"],
        ),
        WebhookDelivery.objects.values("event", "state"),
        ("event", "state"),
    )
    yield _counted(
        GaugeMetricFamily(
            "hotdash_notifications",
            "Outgoing notifications by event and state.",
            labels=["event", "state"],
        ),
        Notification.objects.values("event", "state"),
        ("event", "state"),
    )


def _operations(now: datetime) -> Iterator[Metric]:
    heartbeats = GaugeMetricFamily(
        "hotdash_worker_heartbeat_age_seconds",
        "Seconds since each worker last executed its heartbeat task.",
        labels=["worker"],
    )
    for hostname, seen_at in WorkerHeartbeat.objects.order_by("hostname").values_list(
        "hostname", "seen_at"
    ):
        heartbeats.add_metric([hostname], max(0.0, (now - seen_at).total_seconds()))
    yield heartbeats
    verification = AuditVerification.objects.order_by("-id").only("ok").first()
    if verification is not None:
        yield GaugeMetricFamily(
            "hotdash_audit_chain_ok",
            "1 when the last verification of the audit hash chain passed, 0 when it failed.",
            value=1 if verification.ok else 0,
        )
    yield _counted(
        GaugeMetricFamily("hotdash_previews", "Preview environments by state.", labels=["state"]),
        Preview.objects.values("state"),
        ("state",),
    )


def _upstream() -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "hotdash_upstream_requests",
        "Requests sent to Fly and GitHub (each attempt), by HTTP status (error: no answer).",
        labels=["provider", "method", "status"],
    )
    totals: dict[str, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    for row in UpstreamRequestCount.objects.order_by("provider", "method", "status"):
        requests.add_metric([row.provider, row.method, row.status], row.count)
        count, seconds = totals[row.provider]
        totals[row.provider] = (count + row.count, seconds + row.seconds)
    yield requests
    per_bucket: dict[str, dict[int, int]] = defaultdict(dict)
    for row in UpstreamDurationBucket.objects.all():
        per_bucket[row.provider][row.bucket] = row.count
    durations = HistogramMetricFamily(
        "hotdash_upstream_request_duration_seconds",
        "How long requests to Fly and GitHub took.",
        labels=["provider"],
    )
    for provider in sorted(totals):
        counts, cumulative, running = per_bucket[provider], [], 0
        for index, bound in enumerate(UPSTREAM_BUCKETS):
            running += counts.get(index, 0)
            cumulative.append((str(float(bound)), running))
        cumulative.append(("+Inf", totals[provider][0]))
        durations.add_metric([provider], cumulative, sum_value=totals[provider][1])
    yield durations


class DatabaseCollector(Collector):
    """Every HotDash metric, read from the database as of ``now()`` at each scrape."""

    def __init__(self, now) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield from _deploys()
        yield from _approvals()
        yield from _uptime()
        yield from _deliveries_and_notifications()
        yield from _upstream()
        yield from _operations(self.now())
