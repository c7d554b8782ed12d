"""What an environment is doing and how it is, as HTML built in Python: ``{% activity activity
part %}``, ``{% uptime env uptime %}``, ``{% drift_marker env %}`` and ``{% review_link deploy %}``
(also components/_review_link.html). The Overview builds its environment rows from the same
functions.

Built here rather than in templates: the Overview shows these for every environment of a page
of apps, and per-row template nodes and includes were most of its time (docs/benchmarks.md,
pages section). Every interpolated value is escaped with html.escape (which Django's escape
wraps); the ``<time>`` and badge helpers return escaped HTML.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from django import template
from django.utils.formats import localize
from django.utils.safestring import SafeString, mark_safe

from deployments.models import Deploy, Environment
from deployments.selectors.activity import Activity
from deployments.selectors.uptime import Uptime
from hotdash.paths import object_url
from hotdash.templatetags.badges import state_badge_html
from hotdash.templatetags.sparkline import sparkline
from hotdash.templatetags.times import ago, when

register = template.Library()

# The choices' labels, looked up directly: a model's get_FOO_display() rebuilds its choices'
# dict on every call, several times per environment row.
DEPLOY_KIND_LABELS = dict(Deploy.Kind.choices)
DEPLOY_STATE_LABELS = dict(Deploy.State.choices)


@register.simple_tag(name="review_link")
def review_link_html(deploy: Deploy) -> SafeString:
    """A link opening the approval drawer of a deploy that awaits approval."""
    return review_link_of(deploy.pk, deploy.state)


def review_link_of(pk: int, state: str) -> SafeString:
    """``review_link_html`` for a deploy known by its id and state (rows of plain values)."""
    if state != Deploy.State.AWAITING_APPROVAL:
        return mark_safe("")
    url = escape(object_url("approvals:deploy-drawer", pk))
    return mark_safe(
        f'<a href="{url}" hx-get="{url}" hx-target="#drawer-root" hx-swap="innerHTML">Review</a>'
    )


def deploy_line_html(deploy: Deploy, prefix: str) -> str:
    if deploy.kind == Deploy.Kind.DEPLOY:
        kind = ""
    else:
        kind = f"{DEPLOY_KIND_LABELS.get(deploy.kind, deploy.kind)} to "
    what = (deploy.release.tag if deploy.release else "") or deploy.image_ref
    if deploy.finished_at:
        moment = f"finished {ago(deploy.finished_at)}"
    elif deploy.started_at:
        moment = f"started {ago(deploy.started_at)}"
    else:
        moment = f"queued {ago(deploy.queued_at or deploy.created_at)}"
    url = object_url("deployments:deploy-detail", deploy.pk)
    state = state_badge_html(deploy.state, DEPLOY_STATE_LABELS.get(deploy.state, deploy.state))
    return (
        f'<div class="deploy-line" id="{escape(prefix)}-{deploy.pk}"><a href="{escape(url)}">'
        f"#{deploy.pk}</a>\n  {state}\n"
        f'  {review_link_html(deploy)}\n  <span class="muted">{escape(kind)}{escape(what)} · '
        f"{escape(deploy.requester_name)} · {moment}</span></div>"
    )


def _deploy_lines(deploys: list[Deploy], prefix: str) -> str:
    return "".join(deploy_line_html(deploy, prefix) for deploy in deploys)


@register.simple_tag(name="activity")
def activity_html(activity: Activity, part: str) -> SafeString:
    """One environment's activity: ``part`` "last" is the last deploy that ran, "now" what runs
    and what waits behind it."""
    if part == "last":
        return mark_safe(
            _deploy_lines(activity.last, "last") or '<span class="muted">none yet</span>'
        )
    html = _deploy_lines([activity.running], "running") if activity.running else ""
    html += "\n"
    if activity.queued:
        behind = "Queued behind it" if activity.running else "Queued"
        html += f'<div class="muted">{behind}:</div>{_deploy_lines(activity.queued, "queued")}'
    html += "\n"
    if activity.awaiting:
        html += '<div class="muted">Awaiting approval:</div>'
        html += _deploy_lines(activity.awaiting, "awaiting")
    html += "\n"
    if not activity.busy and not activity.awaiting:
        html += '<span class="muted">idle</span>'
    return mark_safe(html)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{localize(value)} %"


@register.simple_tag(name="uptime")
def uptime_html(env: Environment, uptime: Uptime) -> SafeString:
    """The uptime probes' verdict on ``env``: state and since when, 24 h and 7 d, latency
    trend."""
    return uptime_of(env.uptime, env.uptime_since, uptime)


def uptime_of(state: str, since: datetime | None, uptime: Uptime) -> SafeString:
    """``uptime_html`` for an environment known by its uptime state and since when."""
    if state == Environment.Uptime.DOWN:
        verdict = f"{state_badge_html('failing', 'down')} since {when(since)}"
    elif state == Environment.Uptime.UP:
        verdict = f"{state_badge_html('healthy', 'up')} since {when(since)}"
    else:
        verdict = '<span class="muted">not probed yet</span>'
    trend = sparkline(uptime.hourly_latency_ms, "Hourly mean probe latency over 24 h")
    return mark_safe(
        f'<div class="uptime">\n  {verdict}\n'
        f'  <div class="muted"><span class="uptime-24h">{_percent(uptime.percent_24h)}</span>'
        " over 24 h ·\n"
        f'    <span class="uptime-7d">{_percent(uptime.percent_7d)}</span> over 7 d</div>\n'
        f"  <div>{trend}</div>\n</div>\n"
    )


@register.simple_tag(name="drift_marker")
def drift_marker_html(env: Environment) -> SafeString:
    """Whether the machines match the declared config, as the last drift check found."""
    return drift_marker_of(env.drift, env.drift_checked_at)


def drift_marker_of(drift: dict, checked_at: datetime | None) -> SafeString:
    """``drift_marker_html`` for an environment known by its drift and when it was checked."""
    if drift:
        return mark_safe(
            f'<span class="state state-drifted" title="{len(drift)} machine(s) differ from '
            'the declared config">drifted</span>'
        )
    if checked_at:
        return mark_safe('<span class="muted">config as declared</span>')
    return mark_safe('<span class="muted">config not checked yet</span>')
