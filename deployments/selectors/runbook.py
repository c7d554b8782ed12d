"""The runbook: what to do in an incident, generated from the configuration in the database
(apps, environments, roles) and the settings, so it names the real people, apps and commands.
Its front page lists the apps, a page at a time, and what holds for all of them; each app has
its own page."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from approvals import policy
from approvals.selectors import users_holding
from deployments.models import App, Environment, FreezeWindow, GitHubTeamRole
from deployments.selectors.backups import DUMP_NAMES, BackupStatus, backup_status
from deployments.selectors.environments import freeze_windows_by_environment
from deployments.selectors.releases import last_healthy_versions

RUNBOOK_APPS_PER_PAGE = 20
# What the front page shows of each app and of each of its environments.
RUNBOOK_APP_FIELDS = ("id", "name", "github_owner", "github_repo")
RUNBOOK_ROW_FIELDS = ("id", "app_id", "name", "kind", "locked_at")
# How far back each environment's successful deploys are searched for the release to roll back
# to: a fleet's years of history stay out of one page; the rollback form searches it all.
RUNBOOK_ROLLBACK_HISTORY = 20


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
    """One app's runbook: what to do in an incident, environment by environment."""

    app: App
    environments: list[EnvironmentRunbook]
    team_roles: list[GitHubTeamRole]  # who holds a role through a GitHub team (Sign in with GitHub)
    admins: list[str]
    roles_refresh_minutes: int  # how often beat re-reads GitHub team memberships


@dataclass(frozen=True)
class RunbookIndex:
    """The runbook's front page: a page of apps (each linking to its runbook) and what holds for
    all of them (admins, HotDash's own backups and restore)."""

    apps_page: Page  # the page of apps (by name) shown
    apps: list[App]  # that page's apps, each with its long-lived environments prefetched
    admins: list[str]
    backups: BackupStatus
    vendor: str
    database_name: str
    dump_name: str


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


def _environment(
    environment: Environment, approvers: list[str], version: str, freeze_windows: list[FreezeWindow]
) -> EnvironmentRunbook:
    return EnvironmentRunbook(
        environment=environment,
        approvals_required=policy.approvals_needed(environment),
        approvers=approvers,
        approver_shortfall=_shortfall(environment, approvers),
        rollback_version=version,
        rollback_command=_rollback_command(environment, version or "VERSION"),
        bypass_allowed=environment.allow_approval_bypass,
        freeze_windows=freeze_windows,
    )


def _long_lived() -> QuerySet[Environment]:
    return Environment.objects.exclude(kind=Environment.Kind.PREVIEW).order_by("kind", "name")


def _admins() -> list[str]:
    return [user.get_username() for user in users_holding(policy.ADMIN)]


def runbook_index(*, search: str = "", page: str | int | None = 1) -> RunbookIndex:
    """A page of apps by name (those whose name contains ``search``) with their environments,
    in a fixed number of queries whatever the fleet's size. A page out of range shows the
    last page."""
    apps = App.objects.only(*RUNBOOK_APP_FIELDS).order_by("name", "id")
    if search:
        apps = apps.filter(name__icontains=search)
    apps_page = Paginator(apps, RUNBOOK_APPS_PER_PAGE).get_page(page)
    shown = apps_page.object_list.prefetch_related(
        Prefetch("environments", queryset=_long_lived().only(*RUNBOOK_ROW_FIELDS))
    )
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    return RunbookIndex(
        apps_page=apps_page,
        apps=list(shown),
        admins=_admins(),
        backups=backup_status(),
        vendor=vendor,
        database_name=str(settings.DATABASES[DEFAULT_DB_ALIAS]["NAME"]),
        dump_name=DUMP_NAMES.get(vendor, ""),
    )


def runbook_of(*, app_name: str) -> AppRunbook:
    """The app's runbook (404 for no such app), in a fixed number of queries however long its
    history."""
    app = get_object_or_404(App, name=app_name)
    # Admins are approvers too (roles include the ones below them): one read serves both.
    approver_users = users_holding(policy.APPROVER)
    approvers = [user.get_username() for user in approver_users]
    environments = list(
        _long_lived().filter(app=app).select_related("current_release", "locked_by")
    )
    for environment in environments:
        environment.app = app  # known: no join
    versions = last_healthy_versions(environments=environments, history=RUNBOOK_ROLLBACK_HISTORY)
    freeze_windows = freeze_windows_by_environment(environments=environments)
    return AppRunbook(
        app=app,
        environments=[
            _environment(
                environment, approvers, versions[environment.pk], freeze_windows[environment.pk]
            )
            for environment in environments
        ],
        team_roles=list(app.github_team_roles.order_by("org", "team_slug")),
        admins=[user.get_username() for user in approver_users if policy.can_administer(user)],
        roles_refresh_minutes=max(1, settings.GITHUB_ROLES_REFRESH_SECONDS // 60),
    )
