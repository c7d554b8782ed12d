"""Roles from GitHub teams (beat: settings.CELERY_BEAT_SCHEDULE["github-roles-refresh"])."""

from __future__ import annotations

from celery import shared_task

from deployments.services import github_accounts


@shared_task(ignore_result=True, name="deployments.tasks.github_accounts.github_roles_refresh_all")
def github_roles_refresh_all() -> None:
    github_accounts.github_roles_refresh_all()
