"""Publishing task messages by name, so that services ask for work without importing tasks.

Every message is a hint: the row it is about is durable, and a sweep (the deploy reconciler,
the stuck-delivery and stuck-notification beats, the preview refresh) or the person who asked
sends it again if it is lost. So a broker error is logged, never raised.
"""

from __future__ import annotations

import logging
from typing import Any

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
