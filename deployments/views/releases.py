"""Releases, release detail, Sync now, clearing a bad mark, the rollback form, Rollbacks."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from approvals import policy
from deployments.models import App, Deploy, Environment
from deployments.selectors.releases import (
    NEWEST_RELEASES_SHOWN,
    ReleaseFilters,
    environment_get,
    live_healthy_versions,
    release_apps_page,
    release_blockers,
    release_deploy_history,
    release_get,
    releases_by_app,
    rollback_choices,
    rollback_environments,
    rollback_list,
    rollback_targets_by_environment,
)
from deployments.services.releases import ReleaseSyncFailed, release_clear_bad, release_sync
from deployments.services.rollbacks import fast_path_explanation, rollback_request
from hotdash.errors import Refused
from hotdash.input_gate import parse_id
from hotdash.permissions import client_ip, role_required


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, strip=True)


class RollbackForm(forms.Form):
    release = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect, label="Roll back to")
    reason = forms.CharField(max_length=2000, strip=True, widget=forms.Textarea(attrs={"rows": 3}))
    confirmation = forms.CharField(max_length=100, required=False, strip=True)

    def __init__(self, *args, choices, production_app: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["release"].choices = [(t.release.pk, t.release.tag) for t in choices]
        self.production_app = production_app

    def clean_confirmation(self) -> str:
        value = self.cleaned_data["confirmation"]
        if self.production_app and value != self.production_app:
            raise forms.ValidationError(
                f"Type the app name ({self.production_app}) to roll back production."
            )
        return value


@require_GET
@role_required(policy.can_view)
def release_list_page(request: HttpRequest) -> HttpResponse:
    filters = ReleaseFilters.from_query(request.GET)
    app_name = request.GET.get("app", "")
    page = release_apps_page(app_name=app_name, page=request.GET.get("page"))
    groups = releases_by_app(
        apps=list(page.object_list),
        filters=filters,
        newest=None if app_name else NEWEST_RELEASES_SHOWN,
    )
    others = {name: value for name, value in request.GET.items() if name != "page"}
    context = {
        "apps": groups,
        "app_name": app_name,
        "page": page,
        "query": urlencode(others),
        "environment_names": sorted({env.name for group in groups for env in group.environments}),
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
    context = {
        "release": release,
        "blockers": release_blockers(release),
        "live_in": [env for env in environments if env.current_release_id == release.pk],
        "environments": environments,
        "history": release_deploy_history(release=release),
        "rollback_environments": rollback_targets_by_environment(release=release),
        "clear_form": clear_form or ReasonForm(),
        "can_request": policy.can_request_deploy(request.user),
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
    production_app = environment.app.name if environment.kind == Environment.Kind.PRODUCTION else ""
    initial = {"release": request.GET.get("release")}
    form = RollbackForm(
        request.POST or None, initial=initial, choices=eligible, production_app=production_app
    )
    status = 200
    refusal = None
    if request.method == "POST" and form.is_valid():
        target = next(t.release for t in eligible if t.release.pk == form.cleaned_data["release"])
        try:
            deploy = rollback_request(
                environment=environment,
                release=target,
                requested_by=request.user,
                reason=form.cleaned_data["reason"],
                confirmation=form.cleaned_data["confirmation"],
                ip=client_ip(request),
            )
        except Refused as error:
            refusal, status = error, 409
        else:
            messages.success(request, f"Rollback #{deploy.pk} to {target.tag} requested.")
            return redirect("deployments:deploy-detail", pk=deploy.pk)
    elif request.method == "POST":
        status = 422
    live_healthy = live_healthy_versions(environment=environment)
    context = {
        "environment": environment,
        "choices": choices,
        "form": form,
        "refusal": refusal,
        "production_app": production_app,
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


@require_GET
@role_required(policy.can_view)
def rollback_list_page(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("environment", "")
    environment_id = parse_id(raw)
    if raw and environment_id is None:
        return HttpResponseBadRequest(
            "environment must be an environment id.\n", content_type="text/plain; charset=utf-8"
        )
    rollbacks = list(rollback_list(environment_id=environment_id))
    context = {
        "rollbacks": rollbacks,
        "failed": [
            d for d in rollbacks if d.state == Deploy.State.FAILED or d.health_verified is False
        ],
        "environments": rollback_environments(),
        "environment_id": environment_id,
        "can_request": policy.can_request_deploy(request.user),
    }
    return render(request, "deployments/rollback_list.html", context)
