"""Deployments' side of the approval hand-off (approvals.handoff), storing the upstream request
counts after each web request and task, and copying a user's time zone into their session as
they sign in: connected in ``DeploymentsConfig.ready``, each receiver is one call."""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, worker_process_shutdown
from django.contrib.auth.signals import user_logged_in
from django.core.signals import request_finished
from django.dispatch import receiver

from approvals.handoff import approval_announced, deploy_approved, deploy_replaced
from deployments.middleware import time_zone_remember
from deployments.selectors.time_zones import user_time_zone
from deployments.services.deploys import deploy_queue, deploy_supersede
from deployments.services.notifications import notification_send
from deployments.services.upstream_metrics import upstream_metrics_store


@receiver(deploy_approved)
def deploy_approved_queue(*, deploy, actor, **_: Any) -> None:
    deploy_queue(deploy=deploy, actor=actor)


@receiver(deploy_replaced)
def deploy_replaced_supersede(*, old, new, actor, **_: Any) -> None:
    deploy_supersede(old=old, new=new, actor=actor)


@receiver(approval_announced)
def approval_announced_notify(*, deploy, event, detail, **_: Any) -> None:
    notification_send(deploy=deploy, event=event, detail=detail)


@receiver(user_logged_in)
def user_logged_in_remember_time_zone(*, request, user, **_: Any) -> None:
    if request is not None and hasattr(request, "session"):
        time_zone_remember(request.session, user_time_zone(user=user))


@receiver(request_finished)
def request_finished_store_upstream_metrics(**_: Any) -> None:
    upstream_metrics_store()


@task_postrun.connect
def task_postrun_store_upstream_metrics(**_: Any) -> None:
    upstream_metrics_store()


@worker_process_shutdown.connect
def worker_process_shutdown_store_upstream_metrics(**_: Any) -> None:
    upstream_metrics_store(every=0)
