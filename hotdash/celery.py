"""The Celery app. Broker from REDIS_URL; without it, kombu's filesystem transport under var/."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hotdash.settings")

app = Celery("hotdash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_connections(sender=None, **_: object) -> None:
    """What Django does around a request: drop a database connection that failed, is older
    than CONN_MAX_AGE or fails its health check; keep the others (CELERY_DB_REUSE_MAX).
    Not for eager calls, which run inside their caller's transaction."""
    from django.db import close_old_connections

    if not getattr(sender.request, "is_eager", False):
        close_old_connections()
