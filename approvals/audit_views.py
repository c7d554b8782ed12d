"""The Audit page and its CSV / JSON Lines exports (same filters, one form)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from html import escape
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from approvals import policy
from approvals.audit import EXPORT_FIELDS, record
from approvals.selectors_audit import (
    AuditFilters,
    AuditRow,
    audit_event_export_rows,
    audit_event_page,
    audit_last_verification,
)
from hotdash import input_gate
from hotdash.paths import object_url
from hotdash.permissions import client_ip, role_required
from hotdash.templatetags.times import time_html

# Targets with a page of their own; every other target links to its own audit history.
TARGET_PAGES = {
    "deploy": "deployments:deploy-detail",
    "release": "deployments:release-detail",
}
FILTER_FIELDS = ("actor", "verb", "app", "environment", "target", "since", "until", "q")


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150)
    verb = forms.CharField(
        required=False, max_length=80, help_text='Exact verb, or a prefix ending in "."'
    )
    app = forms.CharField(required=False, max_length=60)
    environment = forms.CharField(required=False, max_length=60)
    target = forms.RegexField(
        required=False,
        regex=r"^[a-z_]+(:[^\s]{1,64})?$",
        error_messages={"invalid": 'Use "type" or "type:id", e.g. deploy:42.'},
    )
    since = input_gate.DateField(required=False, help_text="From this day (UTC)")
    until = input_gate.DateField(required=False, help_text="Up to and including this day (UTC)")
    q = forms.CharField(required=False, max_length=200, label="Reason or comment contains")
    before = input_gate.IdField(required=False, widget=forms.HiddenInput)
    after = input_gate.IdField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        if data.get("before") and data.get("after") is not None:
            raise forms.ValidationError("Use either an older or a newer cursor, not both.")
        return data

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        target_type, _, target_id = (data["target"] or "").partition(":")
        return AuditFilters(
            actor=data["actor"].strip(),
            verb=data["verb"].strip(),
            app=data["app"].strip(),
            environment=data["environment"].strip(),
            target_type=target_type,
            target_id=target_id,
            since=_day_start(data["since"]) if data["since"] else None,
            until=_day_start(data["until"] + timedelta(days=1)) if data["until"] else None,
            text=data["q"].strip(),
        )

    def query(self, **cursor: int) -> str:
        """The current filter as a query string (without cursor), plus ``cursor``."""
        params = {name: self.data[name] for name in FILTER_FIELDS if self.data.get(name)}
        return urlencode({**params, **cursor})


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class TargetUrls:
    """Where an event's target can be seen: its page, else its audit history (the URLs
    reversed once per table)."""

    def __init__(self) -> None:
        self._pages = {
            target_type: partial(object_url, name) for target_type, name in TARGET_PAGES.items()
        }
        self._audit = reverse("approvals:audit")

    def __call__(self, target_type: str, target_id: str) -> str:
        if not target_type:
            return ""
        page = self._pages.get(target_type)
        if page and target_id.isdigit():
            return page(int(target_id))
        target = f"{target_type}:{target_id}" if target_id else target_type
        return self._audit + "?" + urlencode({"target": target})


ROW = (
    '<tr id="audit-event-{id}"><td>{id}</td><td class="mono">{when}</td><td>{actor}</td>'
    "<td><code>{verb}</code></td><td>{target}</td><td>{scope}</td><td>{details}</td>"
    '<td class="mono">{ip}</td></tr>'
)


def audit_rows(events: list[AuditRow]) -> list[SafeString]:
    """The table rows as HTML, every value escaped.

    Built here rather than in the template: fifty rows of template nodes cost more than the
    rest of the page (docs/benchmarks.md, audit section). Escaped with the standard library's
    html.escape, which Django's escape wraps (same output, without the per-call overhead).
    """
    target_url = TargetUrls()
    urls: dict[tuple[str, str], str] = {}  # consecutive events often share a target
    rows = []
    for event in events:
        key = (event.target_type, event.target_id)
        if key not in urls:
            urls[key] = target_url(*key)
        target = ""
        if urls[key]:
            label = event.target_repr or event.target_type
            target = f'<a href="{escape(urls[key])}">{escape(label)}</a>'
        scope = event.app_name
        if event.environment_name:
            scope = f"{scope}/{event.environment_name}"
        details = "; ".join(f"{key}: {value}" for key, value in event.data.items())
        html = ROW.format(
            id=event.id,
            when=time_html(event.created_at, precision="seconds"),
            actor=escape(event.actor_name),
            verb=escape(event.verb),
            target=target,
            scope=escape(scope),
            details=escape(details),
            ip=escape(event.ip or ""),
        )
        rows.append(mark_safe(html))  # every interpolated value is escaped above
    return rows


@require_GET
@never_cache
@role_required(policy.can_view)
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    context: dict[str, Any] = {"form": form, "verification": audit_last_verification()}
    status = 200
    if form.is_valid():
        page = audit_event_page(
            filters=form.filters(),
            before=form.cleaned_data["before"],
            after=form.cleaned_data["after"],
        )
        context.update(
            page=page,
            rows=audit_rows(page.events),
            older_query=form.query(before=page.older_cursor) if page.older_cursor else "",
            newer_query=form.query(after=page.newer_cursor) if page.newer_cursor else "",
            export_query=form.query(),
            can_export=policy.can_export_audit(request.user),
        )
    else:
        status = 400
    template = "approvals/audit.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#audit-results"
    return render(request, template, context, status=status)


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (OWASP CSV injection); JSON Lines stays verbatim."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for row in rows:
        row["data"] = json.dumps(row["data"], sort_keys=True, separators=(",", ":"))
        yield writer.writerow([_csv_cell(row[name]) for name in EXPORT_FIELDS])


def _jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, separators=(",", ":"), default=str) + "\n"


EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", _csv_lines),
    "jsonl": ("application/x-ndjson; charset=utf-8", _jsonl_lines),
}


@require_GET
@never_cache
@role_required(policy.can_export_audit)
def audit_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """Stream every event of the current filter, with hashes, in chain order.

    The export is itself audited (``audit.exported``) and covers the events that existed
    before that record, so the file is a fixed snapshot.
    """
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in form.errors.items())
        return HttpResponse(f"Invalid filter: {errors}\n", status=400, content_type="text/plain")
    content_type, lines = EXPORT_FORMATS[fmt]
    filters = form.filters()
    exported = record(
        actor=request.user,
        verb="audit.exported",
        data={"format": fmt, "filter": form.query()},
        ip=client_ip(request),
    )
    rows = audit_event_export_rows(filters=filters, upto_id=exported.id - 1)
    response = StreamingHttpResponse(lines(rows), content_type=content_type)
    stamp = exported.created_at.strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="hotdash-audit-{stamp}.{fmt}"'
    return response
