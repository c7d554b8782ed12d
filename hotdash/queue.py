"""Publishing task messages by name, so that services ask for work without importing tasks.

Every message is a hint: the row it is about is durable, and a sweep (the deploy reconciler,
the stuck-delivery and stuck-notification beats, the preview refresh) or the person who asked
sends it again if it is lost. So a broker error is logged, never raised.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import threading
import time
from typing import Any

import redis
from django.conf import settings
from redis.exceptions import RedisError

from hotdash.celery import app

log = logging.getLogger(__name__)

# The most often one process checks a coalesced task's flag on behalf of its callers (see
# ``send_coalesced_soon``): the most a caller's check waits behind the one before it.
COALESCE_SPACING_SECONDS = 0.01


def send(task: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> bool:
    """Publish one message for the task registered as ``task``, due after ``countdown``
    seconds; False (and a warning) when the broker refused it. With ``task_always_eager`` the
    task runs here and now instead, as ``apply_async`` would run it."""
    if app.conf.task_always_eager:
        app.tasks[task].apply(args=args, kwargs=kwargs)
        return True
    try:
        app.send_task(task, args=list(args), kwargs=kwargs, countdown=countdown or None)
    except Exception:  # noqa: BLE001 - any broker failure; the durable row is the source of truth
        log.warning("could not publish %s%s", task, tuple(args))
        return False
    return True


def send_coalesced(task: str, *, flag: str, seconds: int) -> bool:
    """Publish one message for ``task`` unless one is already queued or running: ``flag`` in
    the broker's Redis (SET NX, expiring after ``seconds``) says so. For a task that takes
    all the work there is (a drain), so that a burst of requests sends one message, not one
    each. The task calls ``coalesced_release`` before its last look for work. Without Redis
    (the filesystem broker) every call publishes. Returns False when nothing was published
    because the broker failed (the flag is dropped again, so the next call tries)."""
    if app.conf.task_always_eager or not settings.REDIS_URL:
        return send(task)
    try:
        if not _redis().set(flag, 1, nx=True, ex=seconds):
            return True
    except RedisError:
        log.warning("could not set %s in the broker; publishing %s", flag, task)
        return send(task)
    if send(task):
        return True
    coalesced_release(flag)
    return False


def send_coalesced_soon(task: str, *, flag: str, seconds: int) -> None:
    """``send_coalesced``, made for this call and all the others in this process since the
    last check by one thread, at most every COALESCE_SPACING_SECONDS: a burst of requests
    costs one Redis round trip per process every 10 ms, not one each. Lossless: the check
    starts after this call, so after whatever the caller stored before calling, as if the
    caller had made it; a process that exits normally makes a pending check first (one that
    is killed leaves it to the task's sweep, as a kill between storing and checking always
    did). Without Redis, or with eager tasks, this is ``send_coalesced`` here and now."""
    if app.conf.task_always_eager or not settings.REDIS_URL:
        send_coalesced(task, flag=flag, seconds=seconds)
        return
    _coalesced_sender(task, flag, seconds).request()


def coalesced_flush() -> None:
    """Make every pending ``send_coalesced_soon`` check now, in this thread, and wait for
    those in flight (at exit, and for tests that look at the messages sent)."""
    for sender in list(_COALESCED_SENDERS.values()):
        sender.flush()


class _CoalescedSender:
    """One coalesced task's checks for this process: callers raise ``wanted``; a daemon
    thread waits for it, lowers it, then checks (``send_coalesced``), so every call that
    raised it before it was lowered is covered by a check that started after the call."""

    def __init__(self, task: str, flag: str, seconds: int) -> None:
        self.task, self.flag, self.seconds = task, flag, seconds
        self.wanted = threading.Event()
        self.checking = threading.Lock()  # one check at a time; flush waits for one in flight
        threading.Thread(target=self._run, name=f"coalesce {task}", daemon=True).start()

    def request(self) -> None:
        self.wanted.set()

    def flush(self) -> None:
        with self.checking:
            if self.wanted.is_set():
                self.wanted.clear()
                send_coalesced(self.task, flag=self.flag, seconds=self.seconds)

    def _run(self) -> None:
        while True:
            self.wanted.wait()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the thread must outlive any one failure
                log.exception("could not check %s for %s", self.flag, self.task)
            time.sleep(COALESCE_SPACING_SECONDS)


_COALESCED_SENDERS: dict[tuple[str, str, int], _CoalescedSender] = {}
_COALESCED_SENDERS_LOCK = threading.Lock()


def _coalesced_sender(task: str, flag: str, seconds: int) -> _CoalescedSender:
    key = (task, flag, seconds)
    sender = _COALESCED_SENDERS.get(key)
    if sender is None:
        with _COALESCED_SENDERS_LOCK:
            sender = _COALESCED_SENDERS.get(key)
            if sender is None:
                sender = _COALESCED_SENDERS[key] = _CoalescedSender(task, flag, seconds)
    return sender


def _forget_coalesced_senders() -> None:
    """A forked child has none of its parent's threads (or their locks): it starts its own;
    what the parent's callers asked for stays the parent's to check."""
    global _COALESCED_SENDERS_LOCK
    _COALESCED_SENDERS.clear()
    _COALESCED_SENDERS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_coalesced_senders)
atexit.register(coalesced_flush)


def coalesced_hold(flag: str, seconds: int) -> None:
    """Keep ``flag`` for another ``seconds`` while the task is still working."""
    if settings.REDIS_URL:
        with contextlib.suppress(RedisError):
            _redis().expire(flag, seconds)


def coalesced_release(flag: str) -> None:
    """The task is about to take its last look for work: the next ``send_coalesced`` sends."""
    if settings.REDIS_URL:
        try:
            _redis().delete(flag)
        except RedisError:
            log.warning("could not clear %s in the broker: it expires by itself", flag)


def coalesced_claim(flag: str, seconds: int) -> bool:
    """After ``coalesced_release``, work was found again: carry on unless another message
    was sent meanwhile (True: this task holds the flag again)."""
    if not settings.REDIS_URL:
        return True
    try:
        return bool(_redis().set(flag, 1, nx=True, ex=seconds))
    except RedisError:
        return True


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2, health_check_interval=25
    )
