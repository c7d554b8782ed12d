"""Publishing task messages by name, so that services ask for work without importing tasks.

Every message is a hint: the row it is about is durable, and a sweep (the deploy reconciler,
the stuck-delivery and stuck-notification beats, the preview refresh) or the person who asked
sends it again if it is lost. So a broker error is logged, never raised.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

import redis
from django.conf import settings
from redis.exceptions import RedisError

from hotdash.celery import app

log = logging.getLogger(__name__)


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
