"""The audit log's single entry point: ``record`` writes one hash-chained event.

Every state-changing service calls ``record`` inside its own transaction, so a change and its
evidence commit together or not at all. Events are keyed-HMAC chained: each stores the hash of
the previous event and its own hash over a canonical serialisation of its fields.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from approvals.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
SYSTEM_ACTORS = {"system", "worker", "github"}


@dataclass(frozen=True)
class Target:
    type: str
    id: str
    repr: str


def target_of(obj: Any) -> Target:
    """Describe a model instance as an audit target."""
    return Target(type=obj._meta.model_name, id=str(obj.pk), repr=str(obj)[:300])


def canonical_payload(event: AuditEvent) -> bytes:
    fields = {
        "id": event.pk,
        "created_at": event.created_at.isoformat(),
        "actor_type": event.actor_type,
        "actor_user_id": event.actor_user_id,
        "actor_name": event.actor_name,
        "verb": event.verb,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "app_name": event.app_name,
        "environment_name": event.environment_name,
        "data": event.data,
        "ip": event.ip,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()


def compute_hash(event: AuditEvent) -> str:
    key = settings.AUDIT_HMAC_KEY.encode()
    return hmac.new(key, canonical_payload(event), hashlib.sha256).hexdigest()


def record(
    *,
    actor: AbstractBaseUser | AnonymousUser | str | None,
    verb: str,
    target: Any = None,
    app: str = "",
    environment: str = "",
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one event to the chain. ``actor`` is a user, or "system"/"worker"/"github".

    Call it inside the transaction of the change it records. Concurrent writers queue on the
    chain-head row, so the chain never forks.
    """
    if isinstance(actor, str):
        if actor not in SYSTEM_ACTORS:
            raise ValueError(f"unknown system actor {actor!r}")
        actor_type, actor_user, actor_name = actor, None, actor
    elif actor is None or not actor.is_authenticated:
        actor_type, actor_user, actor_name = AuditEvent.ActorType.ANONYMOUS, None, "anonymous"
    else:
        actor_type, actor_user, actor_name = AuditEvent.ActorType.USER, actor, actor.get_username()
    described = target if isinstance(target, Target) or target is None else target_of(target)
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().get(id=1)
        event = AuditEvent(
            id=head.last_event_id + 1,
            created_at=timezone.now(),
            actor_type=actor_type,
            actor_user=actor_user,
            actor_name=actor_name,
            verb=verb,
            target_type=described.type if described else "",
            target_id=described.id if described else "",
            target_repr=described.repr if described else "",
            app_name=app,
            environment_name=environment,
            data=json.loads(json.dumps(data or {}, default=str)),
            ip=ip,
            prev_hash=head.last_hash,
        )
        event.hash = compute_hash(event)
        event.save(force_insert=True)
        head.last_event_id = event.id
        head.last_hash = event.hash
        head.save(update_fields=["last_event_id", "last_hash"])
    return event
