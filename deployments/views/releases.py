"""Releases, release detail, Sync now, clearing a bad mark, the rollback form (with the
emergency rollback), acknowledging an emergency rollback, Rollbacks."""

from __future__ import annotations

from functools import partial
from html import escape
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from approvals import policy
from deployments.models import App, Deploy, Environment, Release
from deployments.selectors.environments import emergency_pre_empts, environment_trouble
from deployments.selectors.promotion import release_promote_offers
from deployments.selectors.releases import (
    NEWEST_RELEASES_SHOWN,
    AppReleaseLines,
    ReleaseFilters,
    ReleaseLine,
    RollbackEnvironment,
    RollbackRow,
    environment_get,
    live_healthy_versions,
    release_apps_page,
    release_blockers,
    release_deploy_history,
    release_get,
    release_tables,
    rollback_apps_page,
    rollback_choices,
    rollback_environments,
    rollback_list,
    rollback_targets_by_environment,
)
from deployments.services.releases import ReleaseSyncFailed, release_clear_bad, release_sync
from deployments.services.rollbacks import (
    emergency_rollback_acknowledge,
    emergency_rollback_refusal,
    fast_path_explanation,
    rollback_request,
)
from deployments.views.rows import bad_mark, deploy_number_cell, deploy_state_cell
from hotdash.api import refusal_status
from hotdash.errors import Refused
from hotdash.input_gate import parse_id
from hotdash.paths import object_url
from hotdash.permissions import client_ip, role_required
from hotdash.templatetags.badges import health_verdict_html, state_badge_html
from hotdash.templatetags.times import when


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, strip=True)


class RollbackForm(forms.Form):
    release = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect, label="Roll back to")
    reason = forms.CharField(max_length=2000, strip=True, widget=forms.Textarea(attrs={"rows": 3}))
    confirmation = forms.CharField(max_length=100, required=False, strip=True)
    emergency = forms.BooleanField(required=False)

    def __init__(self, *args, choices, app_name: str, production: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["release"].choices = [(t.release.pk, t.release.tag) for t in choices]
        self.app_name, self.production = app_name, production

    def clean(self) -> dict:
        data = super().clean()
        emergency = data.get("emergency")
        if (self.production or emergency) and data.get("confirmation") != self.app_name:
            what = "start an emergency rollback" if emergency else "roll back production"
            self.add_error("confirmation", f"Type the app name ({self.app_name}) to {what}.")
        return data


STAGE_MARKS = {
    "succeeded": '<span aria-hidden="true">✓</span><span class="visually-hidden">succeeded</span>',
    "failed": '<span aria-hidden="true">✗</span><span class="visually-hidden">failed</span>',
}


VALIDATION_LABELS = dict(Release.Validation.choices)


def release_row(row: ReleaseLine) -> SafeString:
    """One release's row of its app's table on the Releases page, every value escaped.

    Built here rather than in the template: a page shows a hundred of these rows, and their
    template nodes were most of the page's time (docs/benchmarks.md, pages)."""
    tag = escape(row.tag)
    url = object_url("deployments:release-detail", row.id)
    marks = ""
    if row.is_prerelease:
        marks += '<span class="state">prerelease</span>'
    if row.is_bad:
        marks += '<span class="state state-bad">marked bad</span>'
    if row.deleted_on_github:
        marks += '<span class="state state-bad">deleted on GitHub</span>'
    pipeline = "".join(
        f'<li data-outcome="{outcome}"><span class="state'
        f'{"" if outcome == "never" else f" state-{outcome}"}">'
        f"{escape(name)} {STAGE_MARKS.get(outcome, 'never')}</span></li>"
        for name, outcome in row.pipeline
    )
    live_in = (
        "".join(f'<span class="state state-live">{escape(name)}</span> ' for name in row.live_in)
        or '<span class="muted">—</span>'
    )
    if row.is_deployable:
        deployable = '<span class="state state-valid">deployable</span>'
    else:
        blockers = row.blockers
        deployable = (
            f'<span class="state state-invalid" title="{escape(" ".join(blockers))}">'
            f'not deployable</span>\n<div class="muted">{escape(blockers[0] if blockers else "")}'
            "</div>"
        )
    validation = state_badge_html(row.validation, VALIDATION_LABELS[row.validation])
    return mark_safe(
        f'<tr id="release-{row.id}">\n<td><a href="{escape(url)}">{tag}</a>\n{marks}</td>\n'
        f'<td><ol class="pipeline" aria-label="Where {tag} has run">{pipeline}</ol></td>\n'
        f"<td>{live_in}</td>\n"
        f"<td>{deployable}</td>\n<td>{validation}</td>\n"
        f"<td>{when(row.published_at, 'date')}</td>\n"
        f'<td class="mono">{escape(row.commit_sha[:7])}</td>\n</tr>\n'
    )


def release_sections(tables: list[AppReleaseLines]) -> list[tuple[AppReleaseLines, SafeString]]:
    """Each app of the page with the HTML rows of its releases, as one string ("" when none):
    one template variable per app rather than a loop over its rows."""
    return [(table, mark_safe("".join(release_row(row) for row in table.rows))) for table in tables]


@require_GET
@role_required(policy.can_view)
def release_list_page(request: HttpRequest) -> HttpResponse:
    filters = ReleaseFilters.from_query(request.GET)
    app_name = request.GET.get("app", "")
    page = release_apps_page(app_name=app_name, page=request.GET.get("page"))
    tables = release_tables(
        apps=list(page.object_list),
        filters=filters,
        newest=None if app_name else NEWEST_RELEASES_SHOWN,
    )
    others = {name: value for name, value in request.GET.items() if name != "page"}
    context = {
        "apps": release_sections(tables),
        "app_name": app_name,
        "page": page,
        "query": urlencode(others),
        "environment_names": sorted({env.name for table in tables for env in table.environments}),
        "filters": filters,
        "can_sync": policy.can_request_deploy(request.user),
    }
    template = "deployments/release_list.html"
    # The filters push their URL: going back to it restores the whole page, not the tables.
    if request.htmx and not request.htmx.history_restore_request:
        template += "#release-tables"
    return render(request, template, context)


@require_POST
@role_required(policy.can_request_deploy)
def release_sync_now(request: HttpRequest) -> HttpResponse:
    app = get_object_or_404(App, name=request.POST.get("app", ""))
    try:
        result = release_sync(app=app, actor=request.user, ip=client_ip(request))
    except ReleaseSyncFailed as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Synced {result.summary()}")
    return redirect("deployments:release-list")


def _release_page(
    request: HttpRequest, pk: int, *, clear_form: ReasonForm | None = None, status: int = 200
) -> HttpResponse:
    release = release_get(pk=pk)
    environments = list(
        Environment.objects.filter(app=release.app)
        .exclude(kind=Environment.Kind.PREVIEW)
        .select_related("locked_by")
    )
    can_request = policy.can_request_deploy(request.user)
    offers = (
        release_promote_offers(release=release, environments=environments, now=timezone.now())
        if can_request
        else {}
    )
    context = {
        "release": release,
        "blockers": release_blockers(release),
        "live_in": [env for env in environments if env.current_release_id == release.pk],
        "deploy_targets": [(env, offers.get(env.pk)) for env in environments],
        "history": release_deploy_history(release=release),
        "rollback_environments": rollback_targets_by_environment(release=release),
        "clear_form": clear_form or ReasonForm(),
        "can_request": can_request,
        "can_override": policy.can_override(request.user),
        "can_clear": policy.can_approve(request.user),
    }
    template = "deployments/release_detail.html"
    if request.htmx and clear_form is not None:
        template += "#bad-mark"
    return render(request, template, context, status=status)


@require_GET
@role_required(policy.can_view)
def release_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _release_page(request, pk)


@require_POST
@role_required(policy.can_approve)
def release_clear_bad_mark(request: HttpRequest, pk: int) -> HttpResponse:
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _release_page(request, pk, clear_form=form, status=422)
    release = release_clear_bad(
        release=release_get(pk=pk),
        actor=request.user,
        reason=form.cleaned_data["reason"],
        ip=client_ip(request),
    )
    messages.success(request, f"{release.tag} is no longer marked bad.")
    url = reverse("deployments:release-detail", args=[release.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_http_methods(["GET", "POST"])
@role_required(policy.can_request_deploy)
def rollback_form(request: HttpRequest, pk: int) -> HttpResponse:
    environment = environment_get(pk=pk)
    choices = rollback_choices(environment=environment)
    eligible = [t for t in choices.targets if t.eligible]
    production = environment.kind == Environment.Kind.PRODUCTION
    app_name = environment.app.name
    posted = request.POST if request.method == "POST" else None
    emergency = bool(posted and posted.get("emergency"))
    form = RollbackForm(
        None if emergency else posted,
        initial={"release": request.GET.get("release")},
        choices=eligible,
        app_name=app_name,
        production=production,
    )
    emergency_form = RollbackForm(
        posted if emergency else None, choices=eligible, app_name=app_name, production=production
    )
    posted_form = emergency_form if emergency else form
    status = 200
    refusal = None
    if posted and posted_form.is_valid():
        data = posted_form.cleaned_data
        target = next(t.release for t in eligible if t.release.pk == data["release"])
        try:
            deploy = rollback_request(
                environment=environment,
                release=target,
                requested_by=request.user,
                reason=data["reason"],
                confirmation=data["confirmation"],
                emergency=data["emergency"],
                ip=client_ip(request),
            )
        except Refused as error:
            refusal, status = error, refusal_status(error.code)
        else:
            kind = "Emergency rollback" if deploy.emergency else "Rollback"
            messages.success(request, f"{kind} #{deploy.pk} to {target.tag} requested.")
            return redirect("deployments:deploy-detail", pk=deploy.pk)
    elif posted:
        status = 422
    live_healthy = live_healthy_versions(environment=environment)
    emergency_refusal = emergency_rollback_refusal(environment=environment, user=request.user)
    context = {
        "environment": environment,
        "choices": choices,
        "form": form,
        "emergency_form": emergency_form,
        "emergency": emergency,
        "emergency_refusal": emergency_refusal,
        "trouble": environment_trouble(environment=environment),
        "pre_empts": None
        if emergency_refusal
        else emergency_pre_empts(environment_id=environment.pk),
        "refusal": refusal,
        "production_app": app_name if production else "",
        "policies": {
            t.release.pk: fast_path_explanation(
                environment=environment,
                release=t.release,
                live_healthy=live_healthy,
                user=request.user,
            )[1]
            for t in eligible
        },
    }
    return render(request, "deployments/rollback_form.html", context, status=status)


HEALTH_LABELS = dict(Environment.Health.choices)


def rollback_environment_rows(
    environments: list[RollbackEnvironment], *, can_request: bool, can_lock: bool
) -> SafeString:
    """The Rollbacks page's environments table body (see deployments.views.rows)."""
    environment_url = partial(object_url, "deployments:environment-detail")
    rollback_url = partial(object_url, "deployments:rollback-form")
    rows = []
    for env in environments:
        bad = bad_mark(env.live_bad_reason) if env.live_bad_reason is not None else ""
        if not env.locked:
            lock = '<span class="muted">unlocked</span>'
        else:
            lock = f'<span class="lock">Locked by {escape(env.locked_by or "system")}: '
            lock += f"{escape(env.lock_reason)}</span> "
            if can_lock:
                lock += f'<a href="{environment_url(env.id)}">Unlock on the environment page</a>'
            else:
                lock += '<span class="muted">Only an admin may unlock it.</span>'
        action = ""
        if can_request:
            action = f'<a class="button" href="{rollback_url(env.id)}">Roll back…</a>'
        rows.append(
            f'<tr id="environment-{env.id}"><td><a href="?environment={env.id}">'
            f"{escape(env.app_name)} / {escape(env.name)}</a></td>"
            f"<td>{escape(env.live or 'nothing')} "
            f"{state_badge_html(env.health, HEALTH_LABELS.get(env.health, env.health))}{bad}</td>"
            f"<td>{lock}</td><td>{action}</td></tr>"
        )
    return mark_safe("".join(rows))  # every interpolated value is escaped above


def rollback_history_rows(rollbacks: list[RollbackRow]) -> SafeString:
    """The Rollbacks page's history table body (see deployments.views.rows)."""
    rows = []
    for rollback in rollbacks:
        fast_path = ' <span class="state">fast path</span>' if rollback.fast_path else ""
        automatic = ""
        if rollback.kind == Deploy.Kind.AUTO_ROLLBACK:
            automatic = ' <span class="state">automatic</span>'
        error = f'<div class="error">{escape(rollback.error)}</div>' if rollback.error else ""
        hold = f'<div class="muted">{escape(rollback.hold.summary)}</div>' if rollback.hold else ""
        summary = ""
        if rollback.health_summary:
            summary = f'<div class="muted">{escape(rollback.health_summary)}</div>'
        health = health_verdict_html(
            verified=rollback.health_verified,
            summary=rollback.health_summary,
            terminal=rollback.is_terminal,
        )
        rows.append(
            f'<tr id="rollback-{rollback.id}"><td>{deploy_number_cell(rollback.id)}</td>'
            f"<td>{escape(rollback.app_name)} / {escape(rollback.environment_name)}{fast_path}"
            f"</td><td>{escape(rollback.previous)}</td><td>{escape(rollback.target)}</td>"
            f"<td>{escape(rollback.requester)}{automatic}</td><td>{escape(rollback.reason)}</td>"
            f"<td>{deploy_state_cell(rollback.id, rollback.state)}{error}{hold}</td>"
            f"<td>{health}{summary}</td><td>{when(rollback.created_at)}</td></tr>"
        )
    return mark_safe("".join(rows))  # every interpolated value is escaped above


@require_GET
@role_required(policy.can_view)
def rollback_list_page(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("environment", "")
    environment_id = parse_id(raw)
    if raw and environment_id is None:
        return HttpResponseBadRequest(
            "environment must be an environment id.\n", content_type="text/plain; charset=utf-8"
        )
    page = rollback_apps_page(environment_id=environment_id, page=request.GET.get("page"))
    app_ids = list(page.object_list)
    rollbacks = rollback_list(app_ids=app_ids, environment_id=environment_id)
    can_request = policy.can_request_deploy(request.user)
    others = {name: value for name, value in request.GET.items() if name != "page"}
    context = {
        "rollback_rows": rollback_history_rows(rollbacks),
        "failed": [
            d for d in rollbacks if d.state == Deploy.State.FAILED or d.health_verified is False
        ],
        "environment_rows": rollback_environment_rows(
            rollback_environments(app_ids=app_ids),
            can_request=can_request,
            can_lock=policy.can_lock(request.user),
        ),
        "environment_id": environment_id,
        "page": page,
        "query": urlencode(others),
    }
    return render(request, "deployments/rollback_list.html", context)


@require_POST
@role_required(policy.can_approve)
def emergency_acknowledge_action(request: HttpRequest, pk: int) -> HttpResponse:
    deploy = get_object_or_404(Deploy, pk=pk)
    try:
        emergency_rollback_acknowledge(deploy=deploy, actor=request.user, ip=client_ip(request))
    except Refused as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"Emergency rollback #{deploy.pk} acknowledged.")
    return redirect("overview")
