"""GitHub webhook deliveries: verify, store once, process in a worker, dispatch by event.

The endpoint stores a delivery (one INSERT, no audit-chain lock) and, on commit, asks for a
drain: one message for a whole burst (a Redis flag, checked by one thread per process for
all the deliveries it stored since its last check). The drain records ``webhook.received``
and processes each stored delivery exactly once per state change (a replayed delivery id is a
no-op; a delivery whose message was lost is sent on its own by the stuck-delivery beat).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Field, QuerySet
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from approvals.audit import Entry, record, record_many
from deployments import task_names
from deployments.models import App, WebhookDelivery
from deployments.services.builds import build_handle_push
from deployments.services.github_accounts import github_team_event_handle
from deployments.services.installations import installation_event_apply
from deployments.services.previews import (
    SYNC_ACTIONS,
    preview_close,
    preview_sync,
    pull_request_facts,
)
from deployments.services.releases import (
    ReleaseSyncFailed,
    ReleaseWebhookIgnored,
    release_handle_webhook,
)
from hotdash import queue
from hotdash.integrations import PermanentAPIError, RetryableAPIError, parse_webhook
from hotdash.integrations.github import INSTALLATION_EVENTS, InstallationEvent

log = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
# Organisation events: they name no repository, and concern people, not an app.
TEAM_EVENTS = frozenset({"membership", "team"})
HANDLED_EVENTS = frozenset({"pull_request", "push", "release", *INSTALLATION_EVENTS, *TEAM_EVENTS})
# Set in the broker's Redis while a drain is queued or running (see
# hotdash.queue.send_coalesced_soon); kept while it works, so it expires only if the drain's
# worker died.
DRAIN_FLAG = "hotdash:webhook-deliveries-drain"
DRAIN_FLAG_SECONDS = 120
DRAIN_BATCH = 100


class DeliveryIgnored(Exception):  # noqa: N818 - an outcome, not a failure
    """The delivery is valid but there is nothing to do; the reason is stored on it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@sensitive_variables("secret")
def signature_valid(*, secret: str, body: bytes, header: str | None) -> bool:
    """GitHub's X-Hub-Signature-256 check over the raw bytes, in constant time.

    Fails closed: no secret, no header or a header without the ``sha256=`` prefix is invalid.
    """
    if not secret or not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(SIGNATURE_PREFIX + expected, header)


def webhook_refused_record(*, event: str, delivery_id: str, reason: str, ip: str | None) -> None:
    """Log every refused delivery; audit the first one per address and reason in each window
    of REFUSAL_AUDIT_WINDOW_SECONDS, noting how many were only logged since the last audited
    one. Refusals are unauthenticated: a flood of them must not grow the append-only audit log
    without bound. Never the body or the signature. The count lives in Django's cache (per
    process with the default local-memory cache)."""
    log.warning(
        "webhook refused (%s): event=%s delivery=%s ip=%s", reason, event[:50], delivery_id, ip
    )
    window = f"webhook-refused:{reason}:{ip}"
    skipped = f"{window}:skipped"
    if not cache.add(window, True, timeout=settings.REFUSAL_AUDIT_WINDOW_SECONDS):
        cache.add(skipped, 0, timeout=None)
        cache.incr(skipped)
        return
    data = {"event": event[:50], "delivery_id": delivery_id[:100], "reason": reason}
    not_audited = cache.get(skipped, 0)
    if not_audited:
        cache.decr(skipped, not_audited)
        data["not_audited_since_last"] = not_audited
    with transaction.atomic():
        record(actor="github", verb="webhook.refused", data=data, ip=ip)


def webhook_delivery_receive(
    *,
    delivery_id: str,
    event: str,
    payload: dict[str, Any],
    ip: str | None,
    escaped: list[str] | None = None,
) -> bool:
    """Store a verified delivery once: True when this call stored it, False for a replay of a
    stored delivery id.

    One ``INSERT … ON CONFLICT DO NOTHING`` in autocommit, then the drain message: no
    transaction, no audit-chain lock, so concurrent deliveries never queue behind each other
    and a replay costs no error. The worker records ``webhook.received`` from what the row
    keeps (``ip``, ``escaped``: the payload's strings whose NUL or lone surrogates the input
    gate wrote as escapes).
    """
    action = payload.get("action")
    delivery = WebhookDelivery(
        delivery_id=delivery_id,
        event=event,
        action=action[:50] if isinstance(action, str) else "",
        payload=payload,
        ip=_valid_ip(ip),
        escaped=(escaped or [])[:50],
    )
    values = [
        field.get_db_prep_save(field.pre_save(delivery, True), connection)
        for field in _insert_fields()
    ]
    created = _insert_once(values)
    if created:
        transaction.on_commit(webhook_deliveries_drain_send)
    return created


def _insert_once(values: list[Any]) -> bool:
    """Run the delivery's INSERT: True when it stored the row.

    Outside a transaction the INSERT is its own check of a kept connection, in place of
    Django's ``SELECT 1`` before a request's first query (CONN_HEALTH_CHECKS), a round trip
    per delivery at up to 1,000 a second: on a connection the server dropped it fails, and it
    runs again on a new one. The failed one may have stored the row just before the
    connection broke, so a drain is asked for either way."""
    if connection.in_atomic_block:
        return _execute_insert(values)
    connection.health_check_done = True
    try:
        return _execute_insert(values)
    except (InterfaceError, OperationalError):
        if connection.is_usable():
            raise
        log.warning("database connection lost: storing the webhook delivery on a new one")
        connection.close()
    transaction.on_commit(webhook_deliveries_drain_send)
    return _execute_insert(values)


def _execute_insert(values: list[Any]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_insert_once_sql(), values)
        return cursor.fetchone() is not None


@functools.cache
def _insert_fields() -> list[Field]:
    return [field for field in WebhookDelivery._meta.concrete_fields if not field.primary_key]


@functools.cache
def _insert_once_sql() -> str:
    """The delivery's INSERT that stores nothing, and returns no row, for a known delivery id."""
    quote = connection.ops.quote_name
    meta = WebhookDelivery._meta
    columns = [quote(field.column) for field in _insert_fields()]
    return (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({quote(meta.get_field('delivery_id').column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}"
    )


def _valid_ip(ip: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


class _Outcome(NamedTuple):
    delivery: WebhookDelivery
    state: str
    detail: str
    app_name: str


def _lock_and_receive(
    deliveries: QuerySet[WebhookDelivery], apps: dict[str, App | None]
) -> list[WebhookDelivery]:
    """Lock ``deliveries`` (a ``select_for_update`` queryset) and record ``webhook.received``
    for those not recorded yet, in one transaction, so each is recorded once; with the data
    the endpoint knew: event, action, delivery id, escaped strings and the sender's ip."""
    with transaction.atomic():
        locked = list(deliveries)
        unaudited = [delivery for delivery in locked if not delivery.received_audited]
        entries = []
        for delivery in unaudited:
            data: dict[str, Any] = {
                "event": delivery.event,
                "action": delivery.action,
                "delivery_id": delivery.delivery_id,
            }
            if delivery.escaped:
                data["escaped"] = delivery.escaped
            entries.append(
                Entry(
                    actor="github",
                    verb="webhook.received",
                    target=delivery,
                    app=_app_name_of(delivery, apps),
                    data=data,
                    ip=delivery.ip,
                )
            )
        record_many(entries)
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in unaudited]).update(
            received_audited=True
        )
    for delivery in unaudited:
        delivery.received_audited = True
    return locked


def webhook_delivery_send(*, delivery_pk: int, countdown: float | None = None) -> bool:
    """Publish the processing message; a broker error is logged: the stuck-delivery beat resends."""
    return queue.send(task_names.WEBHOOK_DELIVERY_PROCESS, delivery_pk, countdown=countdown)


def webhook_deliveries_drain_send() -> None:
    """Ask for a drain of the stored deliveries: one message while a drain is queued or
    running, however many deliveries arrive, and one check of that in Redis per process every
    few milliseconds, not one per delivery (``queue.send_coalesced_soon``; a broker error is
    logged: the beat resends)."""
    queue.send_coalesced_soon(
        task_names.WEBHOOK_DELIVERIES_DRAIN, flag=DRAIN_FLAG, seconds=DRAIN_FLAG_SECONDS
    )


def webhook_deliveries_drain() -> int:
    """Process every ``received`` delivery, oldest first, DRAIN_BATCH at a time; returns how
    many. A delivery GitHub or Fly.io answered "later" goes to its own task, which retries it
    with backoff; one that crashes ends ``failed``. Clears the drain flag before its last look,
    so a delivery stored after that look sends a new drain.

    A batch costs a handful of queries, not a dozen per delivery: one lock and one audit
    append for its ``webhook.received`` events, one app lookup per repository, and its
    ignored deliveries finished together. A delivery whose processing did something (or
    failed) is finished at once, so a worker dying mid-batch repeats no work but its own."""
    done, handed_over = 0, set()
    while True:
        apps: dict[str, App | None] = {}
        batch = _lock_and_receive(
            WebhookDelivery.objects.select_for_update()
            .filter(state=WebhookDelivery.State.RECEIVED)
            .exclude(pk__in=handed_over)
            .order_by("pk")[:DRAIN_BATCH],
            apps,
        )
        if not batch:
            queue.coalesced_release(DRAIN_FLAG)
            more = (
                WebhookDelivery.objects.filter(state=WebhookDelivery.State.RECEIVED)
                .exclude(pk__in=handed_over)
                .exists()
            )
            if more and queue.coalesced_claim(DRAIN_FLAG, DRAIN_FLAG_SECONDS):
                continue
            return done
        ignored: list[_Outcome] = []
        for delivery in batch:
            done += 1
            try:
                outcome = _outcome(delivery, _app_of(delivery, apps))
            except RetryableAPIError as error:
                handed_over.add(delivery.pk)
                webhook_delivery_send(delivery_pk=delivery.pk, countdown=error.retry_after or 5)
                continue
            except Exception as error:  # noqa: BLE001 - one bad delivery must not stop the rest
                outcome = _Outcome(
                    delivery,
                    WebhookDelivery.State.FAILED,
                    _crash_detail(delivery.pk, error),
                    _app_name_of(delivery, apps),
                )
            if outcome.state == WebhookDelivery.State.IGNORED:
                ignored.append(outcome)
            else:
                _finish([outcome])
                apps.clear()  # the work done may have changed an app (an installation event)
        _finish(ignored)
        queue.coalesced_hold(DRAIN_FLAG, DRAIN_FLAG_SECONDS)


def _app_of(delivery: WebhookDelivery, apps: dict[str, App | None]) -> App | None:
    """The app watching the delivery's repository; ``apps`` keeps each repository's answer."""
    repository = _repository_of(delivery.payload)
    if repository not in apps:
        apps[repository] = _app_for(repository)
    return apps[repository]


def _app_name_of(delivery: WebhookDelivery, apps: dict[str, App | None]) -> str:
    app = _app_of(delivery, apps)
    return app.name if app else ""


def _repository_of(payload: dict[str, Any]) -> str:
    """The payload's ``owner/repo``, or "" when it names none."""
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    return full_name if isinstance(full_name, str) and "/" in full_name else ""


def _app_for(repository: str) -> App | None:
    owner, _, repo = repository.partition("/")
    if not repo:
        return None
    return App.objects.filter(github_owner__iexact=owner, github_repo__iexact=repo).first()


def _dispatch(delivery: WebhookDelivery, app: App | None) -> str:
    """Act on one delivery; return a short description, or raise DeliveryIgnored."""
    if delivery.event in INSTALLATION_EVENTS:  # about the App, not one app's repository
        event = parse_webhook(delivery.event, delivery.payload)
        assert isinstance(event, InstallationEvent)
        return str(installation_event_apply(event=event))
    if delivery.event in TEAM_EVENTS:
        outcome = github_team_event_handle(event=delivery.event, payload=delivery.payload)
        if outcome is None:
            raise DeliveryIgnored(f"{delivery.event}: nobody who signs in with GitHub")
        return outcome
    if app is None:
        raise DeliveryIgnored("unknown repository")
    if delivery.event == "pull_request":
        return _pull_request(app=app, action=delivery.action, payload=delivery.payload)
    if delivery.event == "push":
        if not settings.SANDBOX_MODE:
            raise DeliveryIgnored("push: builds come from CI through /api/v1/builds")
        return build_handle_push(app=app, payload=delivery.payload)
    if delivery.event == "release":
        try:
            release = release_handle_webhook(
                app=app, action=delivery.action, payload=delivery.payload
            )
        except ReleaseWebhookIgnored as exc:
            raise DeliveryIgnored(exc.reason) from None
        except ReleaseSyncFailed as exc:
            if isinstance(exc.__cause__, RetryableAPIError):
                raise exc.__cause__ from exc  # GitHub may answer later: the task retries
            raise
        return f"release {release.tag}" if release else "release: nothing to do"
    raise DeliveryIgnored(f"event {delivery.event} is not handled")


def _pull_request(*, app: App, action: str, payload: dict[str, Any]) -> str:
    facts = pull_request_facts(payload)
    if action == "closed":
        merged = bool(payload["pull_request"].get("merged"))
        return preview_close(app=app, number=facts.number, merged=merged)
    opted_in = (payload.get("label") or {}).get("name") == app.preview_opt_in_label
    if action in SYNC_ACTIONS or (action == "labeled" and opted_in):
        return preview_sync(app=app, facts=facts)
    raise DeliveryIgnored(f"pull_request.{action} is not handled")


def webhook_delivery_process(*, delivery_pk: int) -> WebhookDelivery:
    """Record a stored delivery received, then process it once. Retryable upstream errors
    propagate (the task retries); anything permanent ends the delivery ``failed`` with the
    reason."""
    delivery, apps = _received_one(delivery_pk)
    if delivery.state != WebhookDelivery.State.RECEIVED:
        return delivery
    [finished] = _finish([_outcome(delivery, _app_of(delivery, apps))])
    return finished


def _received_one(delivery_pk: int) -> tuple[WebhookDelivery, dict[str, App | None]]:
    """Lock one stored delivery and record it received if it is not yet (``_lock_and_receive``
    for one), with the app lookups made."""
    apps: dict[str, App | None] = {}
    [delivery] = _lock_and_receive(
        WebhookDelivery.objects.select_for_update().filter(pk=delivery_pk), apps
    )
    return delivery, apps


def _outcome(delivery: WebhookDelivery, app: App | None) -> _Outcome:
    """Dispatch the delivery: how it ends. RetryableAPIError propagates."""
    try:
        state, detail = WebhookDelivery.State.PROCESSED, _dispatch(delivery, app)
    except DeliveryIgnored as exc:
        state, detail = WebhookDelivery.State.IGNORED, exc.reason
    except PermanentAPIError as exc:
        state, detail = WebhookDelivery.State.FAILED, str(exc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Signed by GitHub but not the shape this event should have.
        state, detail = WebhookDelivery.State.FAILED, f"malformed payload: {exc!r}"
    return _Outcome(delivery, state, detail, app.name if app else "")


def webhook_delivery_crashed(*, delivery_pk: int, error: Exception) -> WebhookDelivery:
    """Processing raised something unexpected: log it with its traceback, end ``failed``."""
    return webhook_delivery_fail(delivery_pk=delivery_pk, detail=_crash_detail(delivery_pk, error))


def _crash_detail(delivery_pk: int, error: Exception) -> str:
    log.exception("webhook delivery %s crashed", delivery_pk, exc_info=error)
    return f"{type(error).__name__}: {error}"


def webhook_delivery_fail(*, delivery_pk: int, detail: str) -> WebhookDelivery:
    """Give up on a delivery (retries exhausted, or it crashed before being recorded)."""
    delivery, apps = _received_one(delivery_pk)
    [finished] = _finish(
        [_Outcome(delivery, WebhookDelivery.State.FAILED, detail, _app_name_of(delivery, apps))]
    )
    return finished


def _finish(outcomes: list[_Outcome]) -> list[WebhookDelivery]:
    """End each outcome's delivery in its state, with one audit event each, in one
    transaction; a delivery no longer ``received`` (finished meanwhile) is left as it is.
    Returns the deliveries as they are now, in the order of ``outcomes``."""
    if not outcomes:
        return []
    now = timezone.now()
    with transaction.atomic():
        current = {
            delivery.pk: delivery
            for delivery in WebhookDelivery.objects.select_for_update()
            .filter(pk__in=[outcome.delivery.pk for outcome in outcomes])
            .order_by("pk")
        }
        ending: dict[tuple[str, str], list[int]] = {}
        entries = []
        for outcome in outcomes:
            delivery = current[outcome.delivery.pk]
            if delivery.state != WebhookDelivery.State.RECEIVED:
                continue
            delivery.state = outcome.state
            delivery.detail = outcome.detail[:2000]
            delivery.processed_at = now
            ending.setdefault((delivery.state, delivery.detail), []).append(delivery.pk)
            entries.append(
                Entry(
                    actor="worker",
                    verb=f"webhook.{delivery.state}",
                    target=delivery,
                    app=outcome.app_name,
                    data={
                        "event": delivery.event,
                        "action": delivery.action,
                        "delivery_id": delivery.delivery_id,
                        "detail": delivery.detail,
                    },
                )
            )
        for (state, detail), pks in ending.items():
            WebhookDelivery.objects.filter(pk__in=pks).update(
                state=state, detail=detail, processed_at=now
            )
        record_many(entries)
    for (state, detail), pks in ending.items():
        if state == WebhookDelivery.State.FAILED:
            for pk in pks:
                log.error("webhook delivery %s failed: %s", current[pk].delivery_id, detail)
    return [current[outcome.delivery.pk] for outcome in outcomes]


def webhook_deliveries_resend_stuck(*, now=None) -> list[int]:
    """Send again every delivery still ``received`` after WEBHOOK_STUCK_AFTER_SECONDS."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.WEBHOOK_STUCK_AFTER_SECONDS)
    stuck = list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.RECEIVED, received_at__lt=cutoff
        ).values_list("pk", flat=True)[:500]
    )
    for pk in stuck:
        webhook_delivery_send(delivery_pk=pk)
    if stuck:
        log.warning("re-sent %d stuck webhook deliveries", len(stuck))
    return stuck


def webhook_payloads_prune(*, now=None) -> int:
    """Empty the stored payload of deliveries finished more than WEBHOOK_PAYLOAD_RETENTION_DAYS
    ago (up to 25 MB each). The row stays: its delivery id keeps refusing a replay of that
    signed delivery, whose signature never expires. One audit event per run that pruned."""
    days = settings.WEBHOOK_PAYLOAD_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    with transaction.atomic():
        pks = list(
            WebhookDelivery.objects.filter(received_at__lt=cutoff)
            .exclude(state=WebhookDelivery.State.RECEIVED)
            .exclude(payload={})
            .values_list("pk", flat=True)[:1000]
        )
        if not pks:
            return 0
        pruned = WebhookDelivery.objects.filter(pk__in=pks).update(payload={})
        record(
            actor="system",
            verb="webhook.payloads_pruned",
            data={"deliveries": pruned, "older_than_days": days},
        )
    log.info("emptied the payload of %d webhook deliveries older than %d days", pruned, days)
    return pruned
