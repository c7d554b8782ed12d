"""The profile page: personal API tokens (created here or with ``create_api_token``), which
events e-mail you, and the time zone times are shown in."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from approvals import policy
from deployments.middleware import time_zone_remember
from deployments.models import ApiToken
from deployments.selectors.notifications import email_muted_events
from deployments.selectors.time_zones import user_time_zone
from deployments.selectors.tokens import api_token_list
from deployments.services.notifications import (
    EMAIL_EVENT_CHOICES,
    email_events_for,
    email_preference_set,
)
from deployments.services.time_zones import time_zone_names, time_zone_set
from deployments.services.tokens import api_token_create, api_token_revoke
from hotdash.errors import Refused
from hotdash.permissions import client_ip, role_required


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “CI deploys”.")


class EmailForm(forms.Form):
    wanted = forms.MultipleChoiceField(
        label="E-mail me when",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        events = email_events_for(user)
        self.fields["wanted"].choices = [(event, EMAIL_EVENT_CHOICES[event]) for event in events]
        if not self.is_bound:
            muted = email_muted_events(user=user)
            self.initial["wanted"] = [event for event in events if event not in muted]


class TimeZoneForm(forms.Form):
    time_zone = forms.CharField(
        label="Show times in",
        max_length=64,
        help_text="An IANA time zone, e.g. Europe/Paris; UTC unless you choose.",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )


def _page(
    request: HttpRequest,
    *,
    form: TokenForm | None = None,
    email_form: EmailForm | None = None,
    time_zone_form: TimeZoneForm | None = None,
    raw_token: str = "",
    status: int = 200,
):
    context = {
        "tokens": api_token_list(user=request.user),
        "form": form or TokenForm(),
        "email_form": email_form or EmailForm(user=request.user),
        "time_zone_form": time_zone_form
        or TimeZoneForm(initial={"time_zone": user_time_zone(user=request.user)}),
        "time_zones": time_zone_names(),
        "has_email": bool(request.user.email),
        "raw_token": raw_token,
        "role": policy.highest_role(request.user),
    }
    return render(request, "deployments/profile.html", context, status=status)


@never_cache
@require_GET
@role_required(policy.can_view)
def profile(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@role_required(policy.can_view)
def email_preferences_update(request: HttpRequest) -> HttpResponse:
    form = EmailForm(request.POST, user=request.user)
    if not form.is_valid():
        return _page(request, email_form=form, status=422)
    email_preference_set(
        user=request.user, wanted=form.cleaned_data["wanted"], ip=client_ip(request)
    )
    messages.success(request, "Your e-mail choices are saved.")
    return redirect("deployments:profile")


@require_POST
@role_required(policy.can_view)
def time_zone_update(request: HttpRequest) -> HttpResponse:
    form = TimeZoneForm(request.POST)
    if form.is_valid():
        try:
            preference = time_zone_set(
                user=request.user, time_zone=form.cleaned_data["time_zone"], ip=client_ip(request)
            )
        except Refused as refused:
            form.add_error("time_zone", refused.message)
        else:
            time_zone_remember(request.session, preference.time_zone)
            messages.success(request, f"Times are now shown in {preference.time_zone}.")
            return redirect("deployments:profile")
    return _page(request, time_zone_form=form, status=422)


@never_cache
@require_POST
@role_required(policy.can_view)
def token_create(request: HttpRequest) -> HttpResponse:
    """Shows the new token once, in this response only; it is stored hashed."""
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form=form, status=422)
    _, raw = api_token_create(
        user=request.user, name=form.cleaned_data["name"], ip=client_ip(request)
    )
    return _page(request, raw_token=raw)


@require_POST
@role_required(policy.can_view)
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    api_token_revoke(token=token, actor=request.user, ip=client_ip(request))
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("deployments:profile")
