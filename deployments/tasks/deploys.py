"""Thin deploy tasks: run the next step of a deploy, reconcile lost messages and leases."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def deploy_run(deploy_id: int) -> None:
    from deployments.services.deploys import deploy_step_run

    deploy_step_run(deploy_id=deploy_id)
