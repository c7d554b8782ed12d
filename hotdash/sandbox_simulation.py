"""Simulate the outside world from the dashboard (sandbox mode, admins only), audited."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import transaction

from approvals.audit import record
from hotdash import input_gate
from hotdash.integrations.sandbox_control import sandbox_control


class SimulationForm(forms.Form):
    ACTIONS = [
        ("open_pull", "Open a pull request"),
        ("push", "Push to a pull request"),
        ("close", "Close a pull request"),
        ("merge", "Merge a pull request"),
        ("release", "Publish a release"),
        ("fail_next", "Make the next image fail its health checks"),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    title = forms.CharField(required=False, max_length=200)
    branch = forms.RegexField(required=False, regex=r"^[\w./-]+$", max_length=100)
    number = input_gate.IdField(required=False)
    version = forms.RegexField(required=False, regex=r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
    prerelease = forms.BooleanField(required=False)
    count = forms.IntegerField(required=False, min_value=1, max_value=10)

    NEEDS = {
        "open_pull": ("title", "branch"),
        "push": ("number",),
        "close": ("number",),
        "merge": ("number",),
        "release": ("version",),
        "fail_next": ("count",),
    }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in self.NEEDS.get(data.get("action", ""), ()):
            if data.get(name) in (None, ""):
                self.add_error(name, "Required for this action.")
        return data


def simulate(*, data: dict[str, Any], actor: Any, ip: str | None) -> str:
    """Ask the sandbox to act out ``data["action"]``, audit that an admin did so, and say
    what happened in one sentence. The call happens first: the event records the outcome."""
    control = sandbox_control()
    action = data["action"]
    if action == "open_pull":
        pull = control.open_pull(title=data["title"], branch=data["branch"])
        outcome = f"Opened PR #{pull['number']} from {pull['branch']} at {pull['head_sha'][:7]}."
    elif action == "push":
        pull = control.push_to_pull(number=data["number"])
        outcome = f"Pushed {pull['head_sha'][:7]} to PR #{pull['number']}."
    elif action in {"close", "merge"}:
        pull = control.close_pull(number=data["number"], merge=action == "merge")
        verb = "Merged" if action == "merge" else "Closed"
        outcome = f"{verb} PR #{pull['number']}."
    elif action == "release":
        release = control.publish_release(version=data["version"], prerelease=data["prerelease"])
        outcome = f"Published release {release['tag']} with its artifact, checksum and image."
    else:
        control.fail_next_images(count=data["count"])
        outcome = f"The next {data['count']} image(s) deployed will fail their health checks."
    if action != "fail_next":
        outcome += " GitHub sends HotDash the signed webhook."
    params = {key: value for key, value in data.items() if value not in (None, "", False)}
    with transaction.atomic():
        record(
            actor=actor,
            verb=f"sandbox.{action}",
            data={"params": params, "outcome": outcome},
            ip=ip,
        )
    return outcome
