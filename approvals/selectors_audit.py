"""Reads of the audit log: the filtered, keyset-paginated page, exports and verification status.

Every page is one indexed query whatever its depth: ``id < cursor ORDER BY id DESC LIMIT n+1``
(no OFFSET, no COUNT). Filters map onto indexes: actor (actor_name, id), exact verb (verb, id),
verb prefix LIKE 'deploy.%' (verb varchar_pattern_ops), app/environment
(app_name, environment_name, id), target (target_type, target_id, id), and free text is a
LIKE on the lower-cased ``search_text`` column, served on PostgreSQL by a pg_trgm GIN index
over (verb, search_text), so a verb prefix narrows a common word inside the index (0006).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.db.models import QuerySet

from approvals.audit import EXPORT_FIELDS
from approvals.models import AuditEvent, AuditVerification

PAGE_SIZE = 50


class AuditRow(NamedTuple):
    """An event as the Audit page shows it: no hashes, no search text.

    Read as tuples rather than model instances, which cost more to build than the query.
    """

    id: int
    created_at: datetime
    actor_name: str
    verb: str
    target_type: str
    target_id: str
    target_repr: str
    app_name: str
    environment_name: str
    data: dict[str, Any]
    ip: str | None


PAGE_FIELDS = AuditRow._fields


@dataclass(frozen=True)
class AuditFilters:
    """What the Audit page and its exports show; empty values do not filter."""

    actor: str = ""
    verb: str = ""  # exact, or a prefix when it ends with "." ("deploy.")
    app: str = ""
    environment: str = ""
    target_type: str = ""
    target_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""

    def is_empty(self) -> bool:
        return self == AuditFilters()


@dataclass
class AuditPage:
    events: list[AuditRow]
    older_cursor: int | None  # pass as ?before= for the next (older) page
    newer_cursor: int | None  # pass as ?after= for the previous (newer) page
    filters: AuditFilters = field(default_factory=AuditFilters)


def audit_event_filter(filters: AuditFilters) -> QuerySet[AuditEvent]:
    """The events matching ``filters`` (unordered); shared by the page and the exports."""
    events = AuditEvent.objects.all()
    if filters.actor:
        events = events.filter(actor_name=filters.actor)
    if filters.verb.endswith("."):
        events = events.filter(verb__startswith=filters.verb)
    elif filters.verb:
        events = events.filter(verb=filters.verb)
    if filters.app:
        events = events.filter(app_name=filters.app)
    if filters.environment:
        events = events.filter(environment_name=filters.environment)
    if filters.target_type:
        events = events.filter(target_type=filters.target_type)
    if filters.target_id:
        events = events.filter(target_id=filters.target_id)
    if filters.since:
        events = events.filter(created_at__gte=filters.since)
    if filters.until:
        events = events.filter(created_at__lt=filters.until)
    if filters.text:
        events = events.filter(search_text__contains=filters.text.lower())
    return events


def audit_event_page(
    *,
    filters: AuditFilters,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> AuditPage:
    """One page, newest first: older than ``before``, or the page just newer than ``after``."""
    events = audit_event_filter(filters).values_list(*PAGE_FIELDS)
    if after is not None:
        rows = list(map(AuditRow._make, events.filter(id__gt=after).order_by("id")[: size + 1]))
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        newer = rows[0].id if rows and more_newer else None
        older = rows[-1].id if rows else None
    else:
        if before is not None:
            events = events.filter(id__lt=before)
        rows = list(map(AuditRow._make, events.order_by("-id")[: size + 1]))
        more_older = len(rows) > size
        rows = rows[:size]
        older = rows[-1].id if rows and more_older else None
        newer = rows[0].id if rows and before is not None else None
    return AuditPage(events=rows, older_cursor=older, newer_cursor=newer, filters=filters)


def audit_event_export_rows(
    *, filters: AuditFilters, upto_id: int, chunk_size: int = 2000
) -> Iterator[dict[str, Any]]:
    """Every matching event up to ``upto_id``, in chain (id) order, as export rows.

    Streams over a server-side cursor on PostgreSQL, so memory stays flat however many rows.
    """
    rows = (
        audit_event_filter(filters)
        .filter(id__lte=upto_id)
        .order_by("id")
        .values_list(*EXPORT_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    for values in rows:
        row = dict(zip(EXPORT_FIELDS, values, strict=True))
        row["created_at"] = row["created_at"].isoformat()
        yield row


def audit_last_verification() -> AuditVerification | None:
    return AuditVerification.objects.order_by("-id").first()
