"""The audit log's single entry point (``record``) and its verification (``verify``).

Every state-changing service calls ``record`` inside its own transaction, so a change and its
evidence commit together or not at all. Events are keyed-HMAC chained: each stores the hash of
the previous event and its own hash over a canonical serialisation of its fields, keyed with
settings.AUDIT_HMAC_KEY, so someone with only database access cannot recompute the chain.
The table is append-only in the database too (triggers from migration 0004).

The chain head is in the same database, so someone able to delete the newest events and rewrite
the head would leave a chain that still verifies. ``audit_anchor_write`` therefore exports the
head every hour to AUDIT_ANCHOR_DIR as a signed, read-only file that is never overwritten
(CloudTrail-style digests), and ``verify`` fails when the database is behind the newest anchor.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from approvals.models import AuditChainHead, AuditEvent, AuditVerification

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
SYSTEM_ACTORS = {"system", "worker", "github"}
# Keys of ``data`` whose text the Audit page's free-text filter searches.
SEARCHABLE_KEYS = ("reason", "comment", "override_reason", "change_message")
# The fields an event's hash covers, in export order; ``hash`` and ``search_text`` follow.
HASHED_FIELDS = (
    "id",
    "created_at",
    "actor_type",
    "actor_user_id",
    "actor_name",
    "verb",
    "target_type",
    "target_id",
    "target_repr",
    "app_name",
    "environment_name",
    "data",
    "ip",
    "prev_hash",
)
EXPORT_FIELDS = (*HASHED_FIELDS, "hash")
# Triggers installed by migration 0004, per database vendor.
GUARD_TRIGGERS = {
    "postgresql": ("audit_append_only_row", "audit_append_only_truncate"),
    "sqlite": ("audit_append_only_update", "audit_append_only_delete"),
}


@dataclass(frozen=True)
class Target:
    type: str
    id: str
    repr: str


def target_of(obj: Any) -> Target:
    """Describe a model instance as an audit target."""
    return Target(type=obj._meta.model_name, id=str(obj.pk), repr=str(obj)[:300])


def canonical_payload(fields: Mapping[str, Any] | AuditEvent) -> bytes:
    """The bytes an event's hash covers: its hashed fields as sorted, compact JSON.

    Accepts an event or a mapping of its fields (a row of ``values()`` or of an export);
    ``created_at`` may be a datetime or its ISO 8601 text.
    """
    if isinstance(fields, AuditEvent):
        fields = {name: getattr(fields, name) for name in HASHED_FIELDS}
    created_at = fields["created_at"]
    payload = {name: fields[name] for name in HASHED_FIELDS}
    payload["created_at"] = created_at if isinstance(created_at, str) else created_at.isoformat()
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


@sensitive_variables("key")
def compute_hash(fields: Mapping[str, Any] | AuditEvent) -> str:
    key = settings.AUDIT_HMAC_KEY.encode()
    return hmac.new(key, canonical_payload(fields), hashlib.sha256).hexdigest()


def search_text_of(data: Mapping[str, Any]) -> str:
    """The lower-cased text of ``data``'s reason/comment fields, for free-text search."""
    parts = [str(data[key]) for key in SEARCHABLE_KEYS if data.get(key)]
    return "\n".join(parts).lower()


def _normalise_ip(ip: str | None) -> str | None:
    # The database may rewrite an address (PostgreSQL inet lower-cases IPv6): hash the
    # canonical form, which reads back unchanged.
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def _locked_head() -> AuditChainHead:
    """The chain head, locked for this transaction (re-created at genesis after a flush)."""
    head = AuditChainHead.objects.select_for_update().filter(id=1).first()
    if head is None:
        try:
            with transaction.atomic():
                AuditChainHead.objects.create(id=1, last_event_id=0, last_hash=GENESIS_HASH)
        except IntegrityError:
            pass  # another writer created it first; lock theirs
        head = AuditChainHead.objects.select_for_update().get(id=1)
    return head


@dataclass(frozen=True)
class Entry:
    """One event to append: the arguments of ``record`` (see there)."""

    actor: AbstractBaseUser | AnonymousUser | str | None
    verb: str
    target: Any = None
    app: str = ""
    environment: str = ""
    scope: Any = None
    data: dict[str, Any] | None = None
    ip: str | None = None


def record(
    *,
    actor: AbstractBaseUser | AnonymousUser | str | None,
    verb: str,
    target: Any = None,
    app: str = "",
    environment: str = "",
    scope: Any = None,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one event to the chain. ``actor`` is a user, or "system"/"worker"/"github".
    ``scope`` is an Environment whose app and name fill ``app`` and ``environment``.

    Call it inside the transaction of the change it records. Concurrent writers queue on the
    chain-head row, so the chain never forks (and explicit ids make a fork a key violation).
    Verbs are dotted and documented in docs/audit-verbs.md.
    """
    entry = Entry(actor, verb, target, app, environment, scope, data, ip)
    return record_many([entry])[0]


def record_many(entries: Sequence[Entry]) -> list[AuditEvent]:
    """Append ``entries`` to the chain in order, as ``record`` would one by one, under one
    lock of the chain head and with one INSERT: for a worker recording a batch of changes
    that commit together."""
    if not entries:
        return []
    with transaction.atomic():
        head = _locked_head()
        events = []
        for entry in entries:
            event = _event_of(entry)
            event.id = head.last_event_id + 1
            event.prev_hash = head.last_hash
            event.hash = compute_hash(event)
            head.last_event_id, head.last_hash = event.id, event.hash
            events.append(event)
        AuditEvent.objects.bulk_create(events)
        head.save(update_fields=["last_event_id", "last_hash"])
    return events


def _event_of(entry: Entry) -> AuditEvent:
    """The event ``entry`` describes, not yet linked into the chain (no id, hashes)."""
    actor = entry.actor
    if isinstance(actor, str):
        if actor not in SYSTEM_ACTORS:
            raise ValueError(f"unknown system actor {actor!r}")
        actor_type, actor_user, actor_name = actor, None, actor
    elif actor is None or not actor.is_authenticated:
        actor_type, actor_user, actor_name = AuditEvent.ActorType.ANONYMOUS, None, "anonymous"
    else:
        actor_type, actor_user, actor_name = AuditEvent.ActorType.USER, actor, actor.get_username()
    app, environment = entry.app, entry.environment
    if entry.scope is not None:
        app, environment = entry.scope.app.name, entry.scope.name
    target = entry.target
    described = target if isinstance(target, Target) or target is None else target_of(target)
    clean_data = json.loads(json.dumps(entry.data or {}, default=str))
    return AuditEvent(
        created_at=timezone.now(),
        actor_type=actor_type,
        actor_user=actor_user,
        actor_name=actor_name,
        verb=entry.verb,
        target_type=described.type if described else "",
        target_id=described.id if described else "",
        target_repr=described.repr if described else "",
        app_name=app,
        environment_name=environment,
        data=clean_data,
        ip=_normalise_ip(entry.ip),
        search_text=search_text_of(clean_data),
    )


# --- Verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events_verified: int
    broken_event_id: int | None = None
    reason: str = ""

    @classmethod
    def of(cls, verification: AuditVerification) -> VerifyResult:
        return cls(
            verification.ok,
            verification.events_verified,
            verification.broken_event_id,
            verification.reason,
        )

    def summary(self) -> str:
        if self.ok:
            return f"{self.events_verified} events verified"
        where = f" at event #{self.broken_event_id}" if self.broken_event_id else ""
        return f"audit chain broken{where}: {self.reason}"


def verify_rows(
    rows: Iterable[Mapping[str, Any]], *, head: tuple[int, str] | None = None
) -> VerifyResult:
    """Walk events in id order: contiguous ids from 1, each linked to and hashed correctly.

    ``rows`` are mappings of EXPORT_FIELDS (plus ``search_text`` when it should be checked);
    ``head`` is (last_event_id, last_hash) from the chain head, to catch a deleted tail.
    Stops at the first break and says why.
    """
    expected_id, prev_hash, count = 1, GENESIS_HASH, 0
    for row in rows:
        event_id = row["id"]
        if event_id != expected_id:
            return VerifyResult(
                False, count, event_id, f"expected event #{expected_id} next: events are missing"
            )
        if row["prev_hash"] != prev_hash:
            return VerifyResult(
                False,
                count,
                event_id,
                "prev_hash does not match the previous event's hash "
                "(an event before it was removed or rewritten)",
            )
        if not hmac.compare_digest(compute_hash(row), row["hash"]):
            return VerifyResult(
                False, count, event_id, "hash mismatch: the event's fields were altered"
            )
        if "search_text" in row and row["search_text"] != search_text_of(row["data"]):
            return VerifyResult(False, count, event_id, "search text does not match its data")
        prev_hash, expected_id, count = row["hash"], event_id + 1, count + 1
    if head is not None:
        head_id, head_hash = head
        if head_id != expected_id - 1:
            return VerifyResult(
                False,
                count,
                head_id,
                f"the chain head names event #{head_id} but the log ends at #{expected_id - 1} "
                "(events were removed from the end)",
            )
        if head_hash != prev_hash:
            return VerifyResult(
                False, count, head_id, "the chain head's hash does not match the last event"
            )
    return VerifyResult(True, count)


def guard_problem(*, using: str = DEFAULT_DB_ALIAS) -> str:
    """Why the database's append-only guard is not in force, or "" when it is."""
    connection = connections[using]
    vendor = connection.vendor
    expected = GUARD_TRIGGERS.get(vendor)
    if expected is None:
        return f"no append-only guard is defined for {vendor}"
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass "
                "AND NOT tgisinternal AND tgenabled <> 'D'",
                [AuditEvent._meta.db_table],
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [AuditEvent._meta.db_table],
            )
        active = {name for (name,) in cursor.fetchall()}
    missing = [name for name in expected if name not in active]
    return f"append-only trigger(s) missing or disabled: {', '.join(missing)}" if missing else ""


# --- Anchors: the chain head exported outside the database -----------------------------------

ANCHOR_FORMAT = "hotdash-audit-anchor/1"
ANCHOR_FIELDS = ("format", "sequence", "hash", "event_count", "anchored_at")
ANCHOR_GLOB = "audit-anchor-*.json"


class AnchorInvalid(Exception):
    """An anchor file that is unreadable, incomplete or not signed with the audit key."""


@dataclass(frozen=True)
class Anchor:
    path: Path
    sequence: int
    hash: str
    event_count: int
    anchored_at: str


def _anchor_signature(fields: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {name: fields[name] for name in ANCHOR_FIELDS}, sort_keys=True, separators=(",", ":")
    )
    return hmac.new(settings.AUDIT_HMAC_KEY.encode(), payload.encode(), hashlib.sha256).hexdigest()


def audit_anchor_write(*, now: datetime | None = None) -> Anchor:
    """Export the chain head (sequence, its hash, event count, UTC time) as a new anchor file.

    The file is signed with the audit key, created exclusively and complete (written aside,
    then hard-linked into place) and read-only; an existing anchor of the same second is never
    overwritten: FileExistsError.
    """
    head = AuditChainHead.objects.filter(id=1).values_list("last_event_id", "last_hash").first()
    sequence, last_hash = head or (0, GENESIS_HASH)
    anchored_at = (now or timezone.now()).astimezone(UTC)
    fields = {
        "format": ANCHOR_FORMAT,
        "sequence": sequence,
        "hash": last_hash,
        "event_count": AuditEvent.objects.filter(id__lte=sequence).count(),
        "anchored_at": anchored_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    body = json.dumps({**fields, "signature": _anchor_signature(fields)}, indent=1) + "\n"
    directory = Path(settings.AUDIT_ANCHOR_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"audit-anchor-{anchored_at:%Y%m%dT%H%M%SZ}-{sequence}.json"
    # A crash mid-write must not leave a truncated anchor that fails every later verification.
    partial = directory / f".{path.name}.{os.getpid()}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, 0o444)  # the mode given to open() is narrowed by the umask only
        try:
            os.link(partial, path)  # atomic, and refuses an existing name
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, "anchor exists", str(path)) from None
    finally:
        partial.unlink(missing_ok=True)
    logger.info("Audit chain anchored at event #%s in %s", sequence, path)
    return Anchor(path, sequence, last_hash, fields["event_count"], fields["anchored_at"])


def anchor_read(path: Path) -> Anchor:
    """Read and authenticate one anchor file; AnchorInvalid says why it cannot be trusted."""
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnchorInvalid(f"unreadable: {exc.__class__.__name__}") from exc
    if not isinstance(fields, dict) or not all(
        name in fields for name in (*ANCHOR_FIELDS, "signature")
    ):
        raise AnchorInvalid("not an anchor: fields are missing")
    if not isinstance(fields["signature"], str) or not hmac.compare_digest(
        fields["signature"].encode(), _anchor_signature(fields).encode()
    ):
        raise AnchorInvalid("bad signature: forged or altered")
    if fields["format"] != ANCHOR_FORMAT:
        raise AnchorInvalid(f"unknown anchor format {fields['format']!r}")
    if not all(isinstance(fields[name], int) for name in ("sequence", "event_count")) or not all(
        isinstance(fields[name], str) for name in ("hash", "anchored_at")
    ):
        raise AnchorInvalid("malformed: a field has the wrong type")
    return Anchor(
        path, fields["sequence"], fields["hash"], fields["event_count"], fields["anchored_at"]
    )


def anchor_problem(
    head: tuple[int, str], *, using: str = DEFAULT_DB_ALIAS, restored: bool = False
) -> tuple[int | None, str]:
    """Compare the chain head with the anchor files: (first missing or altered event, why),
    with "" when they agree.

    Every anchor file must be authentic, and the newest one (highest sequence) must name an
    event at or before the head that still has the anchored hash. A head behind it means
    events were removed from the end and the head rewritten. A ``restored`` copy (a backup)
    is the database as it was: anchors written after it are ahead of it by design, so only
    the newest anchor it has reached must agree with it.
    """
    directory = Path(settings.AUDIT_ANCHOR_DIR)
    anchors, invalid = [], []
    for path in sorted(directory.glob(ANCHOR_GLOB)) if directory.is_dir() else []:
        try:
            anchors.append(anchor_read(path))
        except AnchorInvalid as exc:
            invalid.append(f"{path} ({exc})")
    if restored:
        anchors = [anchor for anchor in anchors if anchor.sequence <= head[0]]
    problems, broken_event_id = [], None
    if invalid:
        problems.append(f"{len(invalid)} anchor file(s) cannot be trusted: {'; '.join(invalid)}")
    if anchors:
        newest = max(anchors, key=lambda anchor: (anchor.sequence, anchor.anchored_at))
        head_id = head[0]
        if newest.sequence > head_id:
            broken_event_id = head_id + 1
            missing = (
                f"events #{broken_event_id}–#{newest.sequence} were"
                if newest.sequence > broken_event_id
                else f"event #{broken_event_id} was"
            )
            problems.append(
                f"the chain head is at event #{head_id}, behind anchor {newest.path} "
                f"(event #{newest.sequence} at {newest.anchored_at}): {missing} "
                "removed from the end and the chain head rewritten"
            )
        elif newest.sequence:
            stored = (
                AuditEvent.objects.using(using)
                .filter(id=newest.sequence)
                .values_list("hash", flat=True)
            )
            if not hmac.compare_digest((stored.first() or "").encode(), newest.hash.encode()):
                broken_event_id = newest.sequence
                problems.append(
                    f"event #{newest.sequence} does not have the hash anchored in {newest.path} "
                    f"at {newest.anchored_at}: the chain was rewritten"
                )
    return broken_event_id, "; ".join(problems)


def verify(
    *, chunk_size: int = 5000, using: str = DEFAULT_DB_ALIAS, restored: bool = False
) -> VerifyResult:
    """Verify the whole chain in the database, then that it is not behind the newest anchor,
    then that the append-only guard is in force.

    Reads the chain head first and walks events up to it, so writers appending meanwhile
    neither block it nor make it fail. Memory stays flat: rows stream in chunks. ``using``
    names another database alias (a restored backup, with ``restored``: see anchor_problem).
    """
    head = (
        AuditChainHead.objects.using(using)
        .filter(id=1)
        .values_list("last_event_id", "last_hash")
        .first()
    )
    head = head or (0, GENESIS_HASH)
    rows = (
        AuditEvent.objects.using(using)
        .filter(id__lte=head[0])
        .order_by("id")
        .values(*EXPORT_FIELDS, "search_text")
        .iterator(chunk_size=chunk_size)
    )
    result = verify_rows(rows, head=head)
    if not result.ok:
        return result
    broken_event_id, problem = anchor_problem(head, using=using, restored=restored)
    if problem:
        return VerifyResult(False, result.events_verified, broken_event_id, problem)
    if problem := guard_problem(using=using):
        return VerifyResult(False, result.events_verified, None, problem)
    return result


def audit_chain_verify() -> AuditVerification:
    """Verify the chain and store the result for the Ops and Audit pages.

    A broken chain is also logged as an error and recorded as ``audit.verification_failed``.
    """
    started_at = timezone.now()
    result = verify()
    with transaction.atomic():
        verification = AuditVerification.objects.create(
            started_at=started_at,
            finished_at=timezone.now(),
            ok=result.ok,
            events_verified=result.events_verified,
            broken_event_id=result.broken_event_id,
            reason=result.reason,
        )
        if not result.ok:
            logger.error("Audit verification failed: %s", result.summary())
            record(
                actor="system",
                verb="audit.verification_failed",
                target=verification,
                data={"broken_event_id": result.broken_event_id, "reason": result.reason},
            )
    return verification


def audit_chain_anchor() -> tuple[AuditVerification, Anchor | None]:
    """The hourly job: verify the chain (stored, alerting on failure) and, only when it holds,
    export its head as a new anchor.

    A broken chain is not anchored: the failure events it gets recorded could otherwise climb
    back to a removed sequence and earn a newer anchor that hides the removal.
    """
    verification = audit_chain_verify()
    return verification, audit_anchor_write() if verification.ok else None
