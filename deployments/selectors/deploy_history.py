"""The deploy history: filters (the same for the page and the JSON API), one keyset page.

A page is one query for its rows and one for their approvers, whatever its length: newest
first, ``id < before``, ``size + 1`` rows to know whether an older page exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.db.models import Prefetch, Q, QuerySet

from approvals.models import Decision
from deployments.models import Deploy
from deployments.selectors.deploys import deploy_duration
from hotdash import input_gate

PAGE_SIZE = 50
FILTER_FIELDS = (
    "app",
    "environment",
    "kind",
    "state",
    "requester",
    "approver",
    "version",
    "since",
    "until",
)


def _choices(choices: Any) -> list[tuple[str, str]]:
    return [("", "any"), *choices]


class DeployFilterForm(forms.Form):
    """The history's filters and cursor, from a query string."""

    app = forms.CharField(required=False, max_length=60)
    environment = forms.CharField(required=False, max_length=60)
    kind = forms.ChoiceField(required=False, choices=_choices(Deploy.Kind.choices))
    state = forms.ChoiceField(required=False, choices=_choices(Deploy.State.choices))
    requester = forms.CharField(required=False, max_length=150, help_text="user or system")
    approver = forms.CharField(required=False, max_length=150)
    version = forms.CharField(required=False, max_length=100, help_text="1.2.0 or v1.2.0")
    since = input_gate.DateField(required=False, help_text="Requested on or after (UTC)")
    until = input_gate.DateField(required=False, help_text="Requested on or before (UTC)")
    before = input_gate.IdField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return data

    def filters(self) -> DeployFilters:
        data = self.cleaned_data
        return DeployFilters(
            app=data["app"].strip(),
            environment=data["environment"].strip(),
            kind=data["kind"],
            state=data["state"],
            requester=data["requester"].strip(),
            approver=data["approver"].strip(),
            version=data["version"].strip().removeprefix("v"),
            since=_day_start(data["since"]) if data["since"] else None,
            until=_day_start(data["until"] + timedelta(days=1)) if data["until"] else None,
        )

    def query(self, **cursor: int) -> str:
        """The current filters as a query string (without the cursor), plus ``cursor``."""
        params = {name: self.data[name] for name in FILTER_FIELDS if self.data.get(name)}
        return urlencode({**params, **cursor})


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class DeployFilters:
    app: str = ""
    environment: str = ""
    kind: str = ""
    state: str = ""
    requester: str = ""
    approver: str = ""
    version: str = ""
    since: datetime | None = None
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class HistoryRow:
    deploy: Deploy
    approvers: list[str]  # who approved, in order
    duration: str  # how long the rollout took ("" when it never ran)


@dataclass(frozen=True)
class DeployHistoryPage:
    rows: list[HistoryRow]
    # Pass as ?before= for the next (older) page; None on the last page.
    older_cursor: int | None


def _filtered(filters: DeployFilters) -> QuerySet[Deploy]:
    deploys = Deploy.objects.all()
    exact = {
        "environment__app__name": filters.app,
        "environment__name": filters.environment,
        "kind": filters.kind,
        "state": filters.state,
        "release__version": filters.version,
    }
    deploys = deploys.filter(**{field: value for field, value in exact.items() if value})
    if filters.requester:
        deploys = deploys.filter(
            Q(requested_by__username=filters.requester)
            | Q(requested_by__isnull=True, requested_by_system=filters.requester)
        )
    if filters.approver:
        deploys = deploys.filter(
            approval_request__decisions__user__username=filters.approver,
            approval_request__decisions__verdict=Decision.Verdict.APPROVE,
        )
    if filters.since:
        deploys = deploys.filter(created_at__gte=filters.since)
    if filters.until:
        deploys = deploys.filter(created_at__lt=filters.until)
    return deploys


def _approvals(deploy: Deploy) -> list[Decision]:
    """The approvals prefetched on ``deploy`` (none when it needed no request)."""
    approval = getattr(deploy, "approval_request", None)
    return getattr(approval, "approvals", [])


def deploy_history_page(
    *, filters: DeployFilters, before: int | None = None, size: int = PAGE_SIZE
) -> DeployHistoryPage:
    """One page of the history, newest first, with each deploy's approvers and duration."""
    deploys = _filtered(filters)
    if before is not None:
        deploys = deploys.filter(id__lt=before)
    approvals = Prefetch(
        "approval_request__decisions",
        queryset=Decision.objects.filter(verdict=Decision.Verdict.APPROVE)
        .select_related("user")
        .order_by("created_at", "id"),
        to_attr="approvals",
    )
    rows = list(
        deploys.select_related("environment__app", "release", "requested_by", "approval_request")
        # What the page's rows and the API's read: the rest of these wide rows (a deploy's plan
        # and overrides, an environment's machine config, a release's changelog) is not.
        .only(
            "kind",
            "state",
            "image_ref",
            "requested_by_system",
            "created_at",
            "started_at",
            "finished_at",
            "error",
            "health_summary",
            "environment__name",
            "environment__app__name",
            "release__tag",
            "release__version",
            "release__bad_marked_at",
            "release__bad_reason",
            "requested_by__username",
            "approval_request__deploy",
        )
        .prefetch_related(approvals)
        .order_by("-id")[: size + 1]
    )
    older = rows[size - 1].pk if len(rows) > size else None
    return DeployHistoryPage(
        rows=[
            HistoryRow(
                deploy=deploy,
                approvers=[decision.user.get_username() for decision in _approvals(deploy)],
                duration=deploy_duration(deploy=deploy),
            )
            for deploy in rows[:size]
        ],
        older_cursor=older,
    )
