"""The Celery app. Broker from REDIS_URL; without it, kombu's filesystem transport under var/."""

from __future__ import annotations

import inspect
import logging
import os

from celery import Celery, bootsteps
from celery.signals import before_task_publish, task_postrun, task_prerun

from hotdash import logcontext

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hotdash.settings")

log = logging.getLogger(__name__)

app = Celery("hotdash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

DEPLOY_RECONCILE = "deployments.tasks.deploys.deploy_reconcile"


class ReconcileOnConnect(bootsteps.StartStopStep):
    """Each time a worker connects to the broker (at start, and again after losing it), it
    asks for the deploy reconciler: now, and once more just after a run lease taken before it
    connected has surely expired. So a worker restarted after a crash, or back from a broker
    that lost its messages, resumes the deploys left running without waiting for beat."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c) -> None:
        from django.conf import settings

        for countdown in (0, settings.DEPLOY_LEASE_SECONDS + 1):
            try:
                c.app.send_task(DEPLOY_RECONCILE, countdown=countdown, expires=countdown + 30)
            except Exception:  # noqa: BLE001 - any broker failure; beat reconciles as well
                log.warning("could not ask for the deploy reconciler; beat runs it every 30 s")


app.steps["consumer"].add(ReconcileOnConnect)


@task_prerun.connect
@task_postrun.connect
def close_old_connections(sender=None, **_: object) -> None:
    """What Django does around a request: drop a database connection that failed, is older
    than CONN_MAX_AGE or fails its health check; keep the others (CELERY_DB_REUSE_MAX).
    Not for eager calls, which run inside their caller's transaction."""
    from django.db import close_old_connections

    if not getattr(sender.request, "is_eager", False):
        close_old_connections()


@before_task_publish.connect
def carry_log_context(headers=None, **_: object) -> None:
    """A task message carries the request id, user and deploy of whoever published it."""
    if headers is not None:
        headers.update(logcontext.message_headers())


def _deploy_id(task, args, kwargs) -> int | None:
    """The ``deploy_id`` argument of a task that takes one."""
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except TypeError:
        return None
    return bound.arguments.get("deploy_id")


_task_log_tokens: dict[str, object] = {}


@task_prerun.connect
def bind_log_context(task_id=None, task=None, args=None, kwargs=None, **_: object) -> None:
    """The task's log lines carry its id, its deploy, and what its message carried."""
    request = task.request
    headers = getattr(request, logcontext.HEADER, None)
    carried = logcontext.from_headers(
        {logcontext.HEADER: headers} if headers else getattr(request, "headers", None)
    )
    deploy_id = _deploy_id(task, args, kwargs)
    # The task's own deploy wins over the one its message carried (a run re-sending itself).
    context = {**carried, "task_id": task_id, **({"deploy_id": deploy_id} if deploy_id else {})}
    _task_log_tokens[task_id] = logcontext.enter(**context)


@task_postrun.connect
def unbind_log_context(task_id=None, **_: object) -> None:
    token = _task_log_tokens.pop(task_id, None)
    if token is not None:
        logcontext.leave(token)
