"""Thin deploy tasks: run a deploy's next steps, re-sending itself when a step must wait;
reconcile lost messages and dead workers (beat, every 30 s)."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown
from django.db import InterfaceError, OperationalError

from deployments import task_names
from deployments.engine.clients import deploy_clients_close
from deployments.services.deploys import (
    deploy_execute,
    deploy_reconcile,
    deploy_send,
)
from hotdash.celery import DEPLOY_RECONCILE


# A database restart fails the message with OperationalError/InterfaceError. The same message
# (same args) runs again shortly instead of waiting for the lease to expire and the reconciler
# to resend it. Safe: if the failed attempt had already taken the run lease, the engine drops
# the repeat as stale and recovery is the reconciler's, as before.
@shared_task(
    name=task_names.DEPLOY_RUN,
    bind=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=5,
    retry_backoff=1,
    retry_backoff_max=10,
    retry_jitter=True,
)
def deploy_run(self, deploy_id: int, token: str = "", fly_app: str = "") -> None:
    following = deploy_execute(
        deploy_id=deploy_id,
        token=token,
        worker=self.request.hostname or "worker",
        fly_app=fly_app,
    )
    if following is not None:
        deploy_send(
            deploy_id=following.deploy_id, token=following.token, countdown=following.countdown
        )


@shared_task(name=DEPLOY_RECONCILE, ignore_result=True)
def deploy_reconcile_task() -> None:
    deploy_reconcile()


@worker_process_shutdown.connect  # each prefork child
@worker_shutdown.connect  # the worker itself (solo and thread pools run tasks there)
def close_api_clients(**_: object) -> None:
    deploy_clients_close()
