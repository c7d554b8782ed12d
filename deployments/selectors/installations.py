"""The repositories the GitHub App can see, and which of them are apps already."""

from __future__ import annotations

from dataclasses import dataclass

from deployments.models import App, InstallationRepository


@dataclass(frozen=True)
class VisibleRepository:
    full_name: str
    account: str
    app: App | None  # the app made from it, if any


def installation_repository_list() -> list[VisibleRepository]:
    apps = {app.github_full_name.lower(): app for app in App.objects.all()}
    return [
        VisibleRepository(
            full_name=row.full_name, account=row.account, app=apps.get(row.full_name.lower())
        )
        for row in InstallationRepository.objects.all()
    ]
