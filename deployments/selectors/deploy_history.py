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
from django.db.models import Q, QuerySet

from approvals.models import Decision
from deployments.models import Deploy
from deployments.selectors.deploys import rollout_duration
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
    """What the page's rows and the API read of one deploy: plain values, no model instances
    (a page of them is built from one tuple query)."""

    pk: int
    kind: str
    state: str
    image_ref: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str
    health_summary: str
    app_name: str
    environment_name: str
    release_tag: str  # "" for an image deploy
    release_version: str | None  # None for an image deploy
    bad_reason: str | None  # None unless its release is marked bad
    requester_name: str
    approvers: list[str]  # who approved, in order
    duration: str  # how long the rollout took ("" when it never ran)

    @property
    def is_terminal(self) -> bool:
        return self.state in Deploy.TERMINAL_STATES


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


# The columns a history row is built from.
_ROW_COLUMNS = (
    "id",
    "kind",
    "state",
    "image_ref",
    "created_at",
    "started_at",
    "finished_at",
    "error",
    "health_summary",
    "environment__app__name",
    "environment__name",
    "release__tag",
    "release__version",
    "release__bad_marked_at",
    "release__bad_reason",
    "requested_by__username",
    "requested_by_system",
    "approval_request__id",
)


def _approvers(deploy_ids: list[int]) -> dict[int, list[str]]:
    """Who approved each of ``deploy_ids``, in order (no entry when it needed no request)."""
    approvers: dict[int, list[str]] = {}
    for deploy_id, username in (
        Decision.objects.filter(request__deploy_id__in=deploy_ids, verdict=Decision.Verdict.APPROVE)
        .order_by("created_at", "id")
        .values_list("request__deploy_id", "user__username")
    ):
        approvers.setdefault(deploy_id, []).append(username)
    return approvers


def deploy_history_page(
    *, filters: DeployFilters, before: int | None = None, size: int = PAGE_SIZE
) -> DeployHistoryPage:
    """One page of the history, newest first, with each deploy's approvers and duration."""
    deploys = _filtered(filters)
    if before is not None:
        deploys = deploys.filter(id__lt=before)
    rows = list(deploys.order_by("-id").values_list(*_ROW_COLUMNS, named=True)[: size + 1])
    older = rows[size - 1].id if len(rows) > size else None
    rows = rows[:size]
    # Only deploys that needed an approval request can have approvers.
    requested = [row.id for row in rows if row.approval_request__id is not None]
    approvers = _approvers(requested) if requested else {}
    return DeployHistoryPage(
        rows=[
            HistoryRow(
                pk=row.id,
                kind=row.kind,
                state=row.state,
                image_ref=row.image_ref,
                created_at=row.created_at,
                started_at=row.started_at,
                finished_at=row.finished_at,
                error=row.error,
                health_summary=row.health_summary,
                app_name=row.environment__app__name,
                environment_name=row.environment__name,
                release_tag=row.release__tag or "",
                release_version=row.release__version,
                bad_reason=(
                    row.release__bad_reason if row.release__bad_marked_at is not None else None
                ),
                requester_name=(
                    row.requested_by__username
                    if row.requested_by__username is not None
                    else row.requested_by_system
                ),
                approvers=approvers.get(row.id, []),
                duration=rollout_duration(started_at=row.started_at, finished_at=row.finished_at),
            )
            for row in rows
        ],
        older_cursor=older,
    )
