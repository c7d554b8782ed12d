"""Which repositories the GitHub App can see: kept from its installation webhooks, or read
again from GitHub (every installation's ``GET /installation/repositories``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from approvals import policy
from approvals.audit import record
from deployments.models import InstallationRepository
from hotdash.errors import Refused
from hotdash.integrations import APIError, github_app
from hotdash.integrations.github import InstallationEvent

# installation actions after which the App sees none of the installation's repositories
CLOSING_ACTIONS = frozenset({"deleted", "suspend"})
# installation actions after which the App sees them again (their payload does not list them)
REOPENING_ACTIONS = frozenset({"unsuspend"})


@dataclass(frozen=True)
class InstallationChange:
    added: tuple[str, ...]
    removed: tuple[str, ...]

    def __str__(self) -> str:
        if not (self.added or self.removed):
            return "No change in the repositories the GitHub App can see"
        parts = [f"added {', '.join(self.added)}"] if self.added else []
        parts += [f"removed {', '.join(self.removed)}"] if self.removed else []
        return "GitHub App repositories: " + "; ".join(parts)


def _apply(
    *,
    add: dict[str, tuple[int, str]],
    remove: Iterable[str],
    actor: Any,
    data: dict[str, Any],
    ip: str | None = None,
) -> InstallationChange:
    """Store the change (``add``: full name -> installation id and account) in one
    transaction, audited once when anything changed."""
    with transaction.atomic():
        existing = set(
            InstallationRepository.objects.select_for_update().values_list("full_name", flat=True)
        )
        added = tuple(sorted(set(add) - existing))
        removed = tuple(sorted(set(remove) & existing))
        InstallationRepository.objects.bulk_create(
            InstallationRepository(
                full_name=name, installation_id=add[name][0], account=add[name][1]
            )
            for name in added
        )
        InstallationRepository.objects.filter(full_name__in=removed).delete()
        if added or removed:
            record(
                actor=actor,
                verb="installation.changed",
                data={**data, "added": list(added), "removed": list(removed)},
                ip=ip,
            )
    return InstallationChange(added=added, removed=removed)


def installation_event_apply(*, event: InstallationEvent) -> InstallationChange:
    """Apply an ``installation`` / ``installation_repositories`` webhook. An installation
    unsuspended (its event lists no repositories) is read from GitHub again, when HotDash is
    that App."""
    remove: Iterable[str] = event.removed
    add: Iterable[str] = event.added
    if event.event == "installation" and event.action in CLOSING_ACTIONS:
        remove = InstallationRepository.objects.filter(
            installation_id=event.installation_id
        ).values_list("full_name", flat=True)
    app = github_app()
    if event.event == "installation" and event.action in REOPENING_ACTIONS and app is not None:
        add = [r.full_name for r in app.installation_repositories(event.installation_id)]
    return _apply(
        add=dict.fromkeys(add, (event.installation_id, event.account)),
        remove=list(remove),
        actor="github",
        data={
            "action": f"{event.event}.{event.action}",
            "installation_id": event.installation_id,
            "account": event.account,
        },
    )


def installation_repositories_refresh(*, actor: Any, ip: str | None = None) -> InstallationChange:
    """Read every installation's repositories from GitHub and keep exactly those (admins).
    Refused when no GitHub App is configured or GitHub cannot be read."""
    if not policy.can_administer(actor):
        raise Refused("forbidden", "Only admins may read the GitHub App's repositories.")
    app = github_app()
    if app is None:
        raise Refused(
            "github_app_missing",
            "No GitHub App is configured (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY): HotDash "
            "uses a personal token and sees only the repositories of the apps it has.",
        )
    try:
        seen = {
            repository.full_name: (installation.id, installation.account)
            for installation in app.list_installations()
            for repository in app.installation_repositories(installation.id)
        }
    except APIError as error:
        raise Refused(
            "upstream_error",
            f"Could not read the GitHub App's installations ({error.status or 'no response'}).",
        ) from error
    stored = InstallationRepository.objects.values_list("full_name", flat=True)
    return _apply(
        add=seen,
        remove=set(stored) - set(seen),
        actor=actor,
        data={"action": "refreshed"},
        ip=ip,
    )
