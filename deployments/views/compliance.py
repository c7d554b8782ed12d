"""/ops/compliance/: every app's latest sweep, the history of runs with what changed, a run's
Markdown gap report, "Run now"; and each app's Secrets page (names, places, dates, rotation)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from approvals import policy
from deployments.models import App, ComplianceRun
from deployments.selectors.compliance import (
    RunView,
    app_secrets,
    compliance_history,
    compliance_overview,
    compliance_run_get,
    compliance_run_report,
)
from deployments.services.compliance import (
    compliance_sweep_request,
    secret_rotation_record,
)
from hotdash import input_gate
from hotdash.errors import Refused
from hotdash.permissions import client_ip, role_required


class RunNowForm(forms.Form):
    app = forms.ModelChoiceField(queryset=App.objects.order_by("name"), to_field_name="name")


class RotationForm(forms.Form):
    location = forms.CharField(max_length=80)
    name = forms.CharField(max_length=200)
    rotated_at = input_gate.DateTimeField(
        required=False, help_text="UTC; empty for now, e.g. 2026-12-01 09:30"
    )
    comment = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


@require_GET
@role_required(policy.can_view)
def compliance_page(request: HttpRequest) -> HttpResponse:
    context = {
        "apps": compliance_overview(),
        "history": compliance_history(),
        "can_run": policy.can_request_deploy(request.user),
    }
    return render(request, "deployments/compliance.html", context)


@require_POST
@role_required(policy.can_request_deploy)
def compliance_run_now(request: HttpRequest) -> HttpResponse:
    """Deployers and up: queue a sweep of one app now (audited as compliance.requested)."""
    form = RunNowForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an app to sweep.")
        return redirect("deployments:compliance")
    app = form.cleaned_data["app"]
    compliance_sweep_request(actor=request.user, app=app, ip=client_ip(request))
    messages.success(request, f"Sweep of {app.name} queued: its run is listed here once done.")
    return redirect("deployments:compliance")


def _run(pk: int) -> RunView:
    try:
        return compliance_run_get(pk=pk)
    except ComplianceRun.DoesNotExist:
        raise Http404("No such compliance run.") from None


@require_GET
@role_required(policy.can_view)
def compliance_run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    view = _run(pk)
    context = {"view": view, "markdown": compliance_run_report(view.run)}
    return render(request, "deployments/compliance_run.html", context)


@require_GET
@role_required(policy.can_view)
def compliance_run_markdown(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's gap report as Markdown, for an incident or a status page."""
    run = _run(pk).run
    response = HttpResponse(compliance_run_report(run), content_type="text/markdown; charset=utf-8")
    name = f"compliance-{run.app.name}-{run.started_at:%Y%m%dT%H%MZ}.md"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    return response


@require_GET
@role_required(policy.can_view)
def app_secrets_page(request: HttpRequest, pk: int) -> HttpResponse:
    app = get_object_or_404(App, pk=pk)
    return _secrets(request, app, RotationForm())


def _secrets(request: HttpRequest, app: App, form: RotationForm, status: int = 200):
    context = {
        "secrets": app_secrets(app=app, now=timezone.now()),
        "form": form,
        "can_record": policy.can_request_deploy(request.user),
    }
    return render(request, "deployments/app_secrets.html", context, status=status)


@require_POST
@role_required(policy.can_request_deploy)
def secret_rotated_action(request: HttpRequest, pk: int) -> HttpResponse:
    """Record that a secret was rotated outside HotDash (audited, with the comment)."""
    app = get_object_or_404(App, pk=pk)
    form = RotationForm(request.POST)
    if form.is_valid():
        known = [(row.location, row.name) for row in app_secrets(app=app, now=timezone.now()).rows]
        try:
            secret_rotation_record(
                actor=request.user,
                app=app,
                location=form.cleaned_data["location"],
                name=form.cleaned_data["name"],
                comment=form.cleaned_data["comment"],
                rotated_at=form.cleaned_data["rotated_at"],
                known=known,
                ip=client_ip(request),
            )
        except Refused as refusal:
            form.add_error(None, refusal.message)
        else:
            messages.success(request, f"Rotation of {form.cleaned_data['name']} recorded.")
            return redirect("deployments:app-secrets", pk=app.pk)
    return _secrets(request, app, form, status=422)
