from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals import policy
from deployments.selectors.environments import emergency_rollbacks_unacknowledged
from deployments.selectors.overview import overview_list
from hotdash.permissions import role_required


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
        "apps": overview.apps,
        "page": overview.page,
        "busy": overview.busy,
        "search": search,
        "query": urlencode({"q": search}) if search else "",
        "can_administer": policy.can_administer(request.user),
        "emergencies": emergency_rollbacks_unacknowledged(),
        "can_acknowledge": policy.can_approve(request.user),
    }
    return render(request, template, context)
