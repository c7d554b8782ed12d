"""Thin preview tasks: deploy a newly registered build, and the beat sweeps."""

from __future__ import annotations

import logging

from celery import shared_task

from deployments import task_names
from deployments.models import Build, Preview
from deployments.services.previews import (
    preview_deploy_for_build,
    preview_expire_due,
    preview_orphan_sweep,
    preview_state_refresh_all,
)
from deployments.services.previews import preview_state_refresh as refresh_one
from hotdash.integrations import RetryableAPIError

log = logging.getLogger(__name__)


@shared_task(
    name=task_names.PREVIEW_BUILD_READY,
    ignore_result=True,
    autoretry_for=(RetryableAPIError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=6,
)
def preview_build_ready(build_pk: int) -> None:
    build = Build.objects.select_related("app").get(pk=build_pk)
    preview_deploy_for_build(build=build)


@shared_task(name="deployments.tasks.previews.preview_orphan_sweep", ignore_result=True)
def preview_orphan_sweep_task() -> None:
    for fly_app in preview_orphan_sweep():
        log.warning("orphan sweep destroyed preview app %s", fly_app)


@shared_task(ignore_result=True)
def preview_expire_sweep() -> None:
    for fly_app in preview_expire_due():
        log.info("preview app %s destroyed: past its maximum age", fly_app)


@shared_task(ignore_result=True)
def preview_state_refresh() -> None:
    preview_state_refresh_all()


@shared_task(
    name=task_names.PREVIEW_REFRESH,
    ignore_result=True,
    autoretry_for=(RetryableAPIError,),
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=3,
)
def preview_refresh(preview_pk: int) -> None:
    """One preview, when its deploy ended (sent by the engine)."""
    preview = Preview.objects.select_related("app", "environment").filter(pk=preview_pk).first()
    if preview is not None:
        refresh_one(preview=preview)
