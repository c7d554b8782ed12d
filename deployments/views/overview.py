from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from approvals import policy
from deployments.models import Environment
from deployments.selectors.environments import emergency_rollbacks_unacknowledged
from deployments.selectors.overview import AppSummary, EnvironmentSummary, overview_list
from deployments.templatetags.environment_status import (
    activity_html,
    drift_marker_of,
    uptime_of,
)
from hotdash.paths import object_url
from hotdash.permissions import role_required
from hotdash.templatetags.badges import state_badge_html
from hotdash.templatetags.times import when


class OverviewForm(forms.Form):
    q = forms.CharField(required=False, max_length=60, strip=True, label="Find an app")
    page = forms.IntegerField(
        required=False,
        min_value=1,
        error_messages={
            "invalid": "The page number must be a whole number from 1.",
            "min_value": "The page number must be a whole number from 1.",
        },
    )


# As get_health_display(), without rebuilding the choices' dict for every row.
HEALTH_LABELS = dict(Environment.Health.choices)


def environment_row(row: EnvironmentSummary, queue_url: str) -> SafeString:
    """One environment's row of the apps' tables, every value escaped.

    Built here rather than in the template: a page of apps has dozens of these rows, and their
    template nodes and includes were most of the page's time (docs/benchmarks.md, pages)."""
    env_url = object_url("deployments:environment-detail", row.id)
    if row.release_id is None:
        live = '<span class="muted">nothing deployed</span>'
    else:
        release_url = object_url("deployments:release-detail", row.release_id)
        live = f'<a href="{escape(release_url)}">{escape(row.release_tag)}</a>'
        if row.release_bad_marked_at is not None:
            live += (
                f' <span class="state state-bad" title="{escape(row.release_bad_reason)}">'
                "marked bad</span>"
            )
    if row.locked_at is not None:
        lock = (
            f'<span class="lock">Locked by {escape(row.locked_by_name or "system")}</span>'
            f'<div class="muted">{escape(row.lock_reason)} · since {when(row.locked_at)}</div>'
        )
    else:
        lock = '<span class="muted">unlocked</span>'
    if row.pending_approvals:
        pending = f'<a href="{escape(queue_url)}">{row.pending_approvals} waiting</a>'
    else:
        pending = '<span class="muted">0</span>'
    health = state_badge_html(row.health, HEALTH_LABELS.get(row.health, row.health))
    uptime = uptime_of(row.uptime_state, row.uptime_since, row.uptime)
    return mark_safe(
        f'<tr id="environment-{row.id}">\n'
        f'<th data-label="Environment" scope="row"><a href="{escape(env_url)}">{escape(row.name)}'
        f'</a><div class="muted mono">{escape(row.fly_app_name)} · {escape(row.region)} · '
        f"{row.machine_count}×</div></th>\n"
        f'<td data-label="Live release">{live}</td>\n'
        f'<td data-label="Health">{health}\n'
        f"  <div>{drift_marker_of(row.drift, row.drift_checked_at)}</div></td>\n"
        f'<td data-label="Uptime">{uptime}</td>\n'
        f'<td data-label="Lock">{lock}</td>\n'
        f'<td data-label="Last deploy">{activity_html(row.activity, "last")}</td>\n'
        f'<td data-label="Now">{activity_html(row.activity, "now")}</td>\n'
        f'<td data-label="Pending approvals">{pending}</td>\n'
        "</tr>\n"
    )


def app_sections(apps: list[AppSummary]) -> list[tuple[AppSummary, list[SafeString]]]:
    """Each app of the page with the HTML rows of its environments."""
    queue_url = reverse("approvals:queue")
    return [
        (summary, [environment_row(row, queue_url) for row in summary.environments])
        for summary in apps
    ]


@require_GET
@role_required(policy.can_view)
def overview(request: HttpRequest) -> HttpResponse:
    """One page of apps (?page=, ?q= for a part of the name), or (htmx) only its apps region,
    which polls itself while anything runs."""
    template = "deployments/overview.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#overview-apps"
    form = OverviewForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "search": request.GET.get("q", "")}
        return render(request, template, context, status=400)
    search = form.cleaned_data["q"]
    overview = overview_list(search=search, page=form.cleaned_data["page"] or 1)
    context = {
        "form": form,
        "apps": app_sections(overview.apps),
        "page": overview.page,
        "busy": overview.busy,
        "search": search,
        "query": urlencode({"q": search}) if search else "",
        "can_administer": policy.can_administer(request.user),
        "emergencies": emergency_rollbacks_unacknowledged(),
        "can_acknowledge": policy.can_approve(request.user),
    }
    return render(request, template, context)
