"""The Celery app. Broker from REDIS_URL; without it, kombu's filesystem transport under var/."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hotdash.settings")

app = Celery("hotdash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
