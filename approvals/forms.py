"""Validation of the decision form (approve with an optional comment, reject with a reason)."""

from __future__ import annotations

from django import forms

from approvals.models import Decision


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.Verdict.choices)
    comment = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional when approving; required when rejecting.",
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("decision") == Decision.Verdict.REJECT and not data.get("comment", "").strip():
            self.add_error("comment", "Say why you reject: a reason is required.")
        return data


class BypassForm(forms.Form):
    """Break-glass: the admin's reason and their password again (re-authentication)."""

    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why you bypass the approval: a reason is required."},
    )
    password = forms.CharField(
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "current-password"}),
        help_text="Your own password, entered again.",
    )
