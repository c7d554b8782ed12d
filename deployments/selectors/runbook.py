"""The runbook: what to do in an incident, generated from the configuration in the database
(apps, environments, roles) and the settings, so it names the real people, apps and commands."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from approvals import policy
from approvals.selectors import users_holding
from deployments.models import App, Environment, FreezeWindow, GitHubTeamRole
from deployments.selectors.backups import DUMP_NAMES, BackupStatus, backup_status
from deployments.selectors.environments import environment_freeze_windows
from deployments.selectors.releases import rollback_choices


@dataclass(frozen=True)
class EnvironmentRunbook:
    environment: Environment
    approvals_required: int
    approvers: list[str]
    # Why a request may not find enough approvers (policy.unsatisfiable_reason); "" if it will.
    approver_shortfall: str
    rollback_version: str  # the newest eligible rollback target; "" when there is none
    rollback_command: str
    bypass_allowed: bool
    freeze_windows: list[FreezeWindow]


@dataclass(frozen=True)
class AppRunbook:
    app: App
    environments: list[EnvironmentRunbook]
    team_roles: list[GitHubTeamRole]  # who holds a role through a GitHub team (Sign in with GitHub)


@dataclass(frozen=True)
class Runbook:
    apps: list[AppRunbook]
    admins: list[str]
    backups: BackupStatus
    vendor: str
    database_name: str
    dump_name: str
    roles_refresh_minutes: int  # how often beat re-reads GitHub team memberships


def _rollback_command(environment: Environment, version: str) -> str:
    return (
        f"python manage.py rollback {environment.app.name} {version} --env {environment.name} "
        '--reason "..." --as USERNAME'
    )


def _shortfall(environment: Environment, approvers: list[str]) -> str:
    """What keeps a request from its approvals: too few approvers at all, or too few left
    once its requester (an approver) is excluded."""
    required = policy.approvals_needed(environment)
    if reason := policy.unsatisfiable_reason(
        still_needed=required, eligible=len(approvers), environment=environment
    ):
        return reason
    if environment.allow_self_approval or not approvers:
        return ""
    if reason := policy.unsatisfiable_reason(
        still_needed=required, eligible=len(approvers) - 1, environment=environment
    ):
        return f"When one of the approvers requests: {reason}"
    return ""


def _environment(environment: Environment, approvers: list[str]) -> EnvironmentRunbook:
    targets = [t for t in rollback_choices(environment=environment).targets if t.eligible]
    version = targets[0].release.version if targets else ""
    return EnvironmentRunbook(
        environment=environment,
        approvals_required=policy.approvals_needed(environment),
        approvers=approvers,
        approver_shortfall=_shortfall(environment, approvers),
        rollback_version=version,
        rollback_command=_rollback_command(environment, version or "VERSION"),
        bypass_allowed=environment.allow_approval_bypass,
        freeze_windows=environment_freeze_windows(environment=environment),
    )


def runbook_build() -> Runbook:
    approvers = [user.get_username() for user in users_holding(policy.APPROVER)]
    environments = (
        Environment.objects.exclude(kind=Environment.Kind.PREVIEW)
        .select_related("app", "current_release", "locked_by")
        .order_by("app__name", "kind", "name")
    )
    team_roles: dict[int, list[GitHubTeamRole]] = {}
    for mapping in GitHubTeamRole.objects.order_by("org", "team_slug"):
        team_roles.setdefault(mapping.app_id, []).append(mapping)
    by_app: dict[int, AppRunbook] = {}
    for environment in environments:
        entry = by_app.setdefault(
            environment.app_id,
            AppRunbook(environment.app, [], team_roles.get(environment.app_id, [])),
        )
        entry.environments.append(_environment(environment, approvers))
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    return Runbook(
        apps=list(by_app.values()),
        admins=[user.get_username() for user in users_holding(policy.ADMIN)],
        backups=backup_status(),
        vendor=vendor,
        database_name=str(settings.DATABASES[DEFAULT_DB_ALIAS]["NAME"]),
        dump_name=DUMP_NAMES.get(vendor, ""),
        roles_refresh_minutes=max(1, settings.GITHUB_ROLES_REFRESH_SECONDS // 60),
    )
