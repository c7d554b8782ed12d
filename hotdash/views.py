"""Project-wide endpoints: /health, /metrics, the Ops page (backups too) and the runbook."""

from __future__ import annotations

import hmac
from functools import partial
from html import escape
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from approvals import policy
from approvals.selectors_audit import audit_last_verification
from deployments.selectors.alerts import alert_list_active
from deployments.selectors.backups import backup_status
from deployments.selectors.metrics import DatabaseCollector
from deployments.selectors.ops import (
    environment_uptime_list,
    notification_list_recent,
    ops_backlog,
    worker_list,
)
from deployments.selectors.runbook import runbook_index, runbook_of
from deployments.services.backups import backup_request
from deployments.services.ops import upstream_checks
from hotdash.health import check_broker, check_database
from hotdash.integrations.http import APIError
from hotdash.paths import object_url
from hotdash.permissions import client_ip, role_required
from hotdash.sandbox_simulation import SimulationForm, simulate
from hotdash.templatetags.badges import state_badge_html
from hotdash.templatetags.times import ago, when

RUNBOOK_SEARCH_LENGTH = 60


def _metrics_allowed(request: HttpRequest) -> bool:
    """With METRICS_TOKEN set, only ``Authorization: Bearer <token>``; unset, only in DEBUG or
    sandbox mode (a demo), never in production."""
    token = settings.METRICS_TOKEN
    if not token:
        return settings.DEBUG or settings.SANDBOX_MODE
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@login_not_required
@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format: counts, durations and ages only, nothing sensitive."""
    if not _metrics_allowed(request):
        response = HttpResponse(
            "Metrics need Authorization: Bearer <METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(now=timezone.now))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def uptime_rows(environments: list[tuple]) -> SafeString:
    """The Ops page's uptime table body, one row per probed environment (a fleet has hundreds):
    built here rather than by template nodes per row (see deployments.views.rows)."""
    environment_url = partial(object_url, "deployments:environment-detail")
    down, up = state_badge_html("failing", "down"), state_badge_html("healthy", "up")
    rows = [
        f'<tr><td data-label="Environment"><a href="{environment_url(environment.id)}">'
        f"{escape(environment.app_name)} {escape(environment.name)}</a></td>"
        f'<td data-label="State">{down if environment.uptime == "down" else up}</td>'
        f'<td data-label="Since">{when(environment.uptime_since)} '
        f"({ago(environment.uptime_since)})</td></tr>"
        for environment in environments
    ]
    return mark_safe("".join(rows))  # every interpolated value is escaped above


@require_GET
@role_required(policy.can_view)
def ops(request: HttpRequest) -> HttpResponse:
    checks = [check_database(), check_broker()]
    is_admin = policy.can_administer(request.user)
    now = timezone.now()
    context = {
        "alerts": alert_list_active(),
        "checks": checks,
        "backlog": ops_backlog(now=now),
        "verification": audit_last_verification(),
        "is_admin": is_admin,
        "notifications": notification_list_recent() if is_admin else [],
        "backups": backup_status(),
        "workers": worker_list(now=now),
        "uptime_rows": uptime_rows(environment_uptime_list()),
    }
    return render(request, "ops.html", context)


@require_GET
@role_required(policy.can_view)
def ops_upstreams(request: HttpRequest) -> HttpResponse:
    """Whether Fly and GitHub answer with HotDash's tokens (loaded after the Ops page, so a
    slow provider never holds the page up)."""
    return render(request, "ops.html#ops-upstreams", {"upstreams": upstream_checks()})


@require_POST
@role_required(policy.can_administer)
def ops_backup_now(request: HttpRequest) -> HttpResponse:
    """Admins: queue a backup and its restore drill now (audited as backup.requested)."""
    backup_request(actor=request.user, ip=client_ip(request))
    messages.success(
        request, "Backup queued: it is listed here once a worker has written and drilled it."
    )
    return redirect("ops")


@require_GET
@role_required(policy.can_view)
def ops_runbook(request: HttpRequest) -> HttpResponse:
    """What to do in an incident, generated from the configuration: the apps a page at a time,
    found by part of their name, each linking to its own runbook; then what holds for all."""
    search = request.GET.get("q", "").strip()[:RUNBOOK_SEARCH_LENGTH]
    context = {
        "runbook": runbook_index(search=search, page=request.GET.get("page")),
        "search": search,
        "query": urlencode({"q": search}) if search else "",
    }
    return render(request, "ops_runbook.html", context)


@require_GET
@role_required(policy.can_view)
def ops_runbook_app(request: HttpRequest, name: str) -> HttpResponse:
    """One app's runbook: who approves, how to lock, roll back, override and break glass, per
    environment."""
    return render(request, "ops_runbook_app.html", {"runbook": runbook_of(app_name=name)})


@require_http_methods(["GET", "POST"])
@role_required(policy.can_administer)
def sandbox_control(request: HttpRequest) -> HttpResponse:
    """Admins simulate the outside world: PRs, pushes, releases, failing images."""
    if not settings.SANDBOX_MODE:
        raise Http404("The simulation page exists only in sandbox mode.")
    form = SimulationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            outcome = simulate(data=form.cleaned_data, actor=request.user, ip=client_ip(request))
        except APIError as exc:
            form.add_error(None, f"The sandbox refused: {exc}")
        else:
            messages.success(request, outcome)
            return redirect("sandbox-control")
    status = 422 if form.errors else 200
    return render(request, "sandbox_control.html", {"form": form}, status=status)
