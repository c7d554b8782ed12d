"""Project-wide endpoints: /health, /metrics and the Ops page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from approvals import policy
from deployments.selectors.overview import metrics_snapshot
from hotdash import __version__
from hotdash.health import check_broker, check_database
from hotdash.permissions import role_required


@login_not_required
@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    checks = [check_database(), check_broker()]
    healthy = all(check.ok for check in checks)
    body = {
        "status": "ok" if healthy else "unhealthy",
        "version": __version__,
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return JsonResponse(body, status=200 if healthy else 503)


@login_not_required
@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format: counts only, nothing sensitive."""
    lines = []
    for name, help_text, samples in metrics_snapshot():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            label_text = ",".join(f'{key}="{val}"' for key, val in labels.items())
            lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")


@require_GET
@role_required(policy.can_view)
def ops(request: HttpRequest) -> HttpResponse:
    checks = [check_database(), check_broker()]
    return render(request, "ops.html", {"checks": checks})
