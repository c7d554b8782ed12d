"""Changing an environment's declared machine configuration from the app's fly.toml, and
rolling the declared configuration out onto the machines (a reconcile deploy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from approvals import policy
from approvals.audit import record
from deployments import fly_toml
from deployments.models import Deploy, Environment, Release
from deployments.services.requests import deploy_request
from hotdash.errors import Refused
from hotdash.integrations import APIError, PermanentAPIError, github_client


@dataclass(frozen=True)
class ConfigChange:
    field: str
    label: str
    current: Any
    proposed: Any


@dataclass(frozen=True)
class FlyTomlImport:
    """What a fly.toml at a release's tag would change in an environment's declared config."""

    environment: Environment
    release: Release
    path: str
    blob_sha: str
    changes: list[ConfigChange]
    ignored: list[str]
    notes: list[str]

    @property
    def commit_sha(self) -> str:
        return self.release.commit_sha


def fly_toml_paths(environment: Environment) -> tuple[str, str]:
    """Where an environment's Fly configuration is looked for, first match wins: its own file
    (``fly.production.toml``), then the app's default ``fly.toml``."""
    return (f"fly.{environment.name}.toml", "fly.toml")


def _label(name: str) -> str:
    return str(Environment._meta.get_field(name).verbose_name)


def fly_toml_read(*, environment: Environment, release: Release) -> FlyTomlImport:
    """Fetch and read the environment's fly.toml at ``release``'s tag. Raises
    Refused (``fly_toml_missing``, ``fly_toml_invalid``, ``upstream_error``)."""
    app = environment.app
    if release.app_id != app.pk:
        raise Refused("wrong_app", f"{release} is not a release of {app}.")
    found = None
    try:
        with github_client(app.github_owner, app.github_repo) as github:
            for path in fly_toml_paths(environment):
                try:
                    found = github.get_repo_file(path, release.tag)
                    break
                except PermanentAPIError as error:
                    if error.status != 404:
                        raise
    except APIError as error:
        raise Refused(
            "upstream_error",
            f"Could not read the Fly configuration from GitHub ({error.status or 'no response'}).",
        ) from error
    if found is None:
        raise Refused(
            "fly_toml_missing",
            f"Neither {' nor '.join(fly_toml_paths(environment))} exists at {release.tag}.",
        )
    try:
        parsed = fly_toml.parse(found.content.decode("utf-8"))
    except (UnicodeDecodeError, fly_toml.FlyTomlError) as error:
        raise Refused(
            "fly_toml_invalid", f"{found.path} at {release.tag} cannot be read: {error}"
        ) from error
    changes = [
        ConfigChange(
            field=name, label=_label(name), current=getattr(environment, name), proposed=value
        )
        for name, value in parsed.values.items()
        if getattr(environment, name) != value
    ]
    return FlyTomlImport(
        environment=environment,
        release=release,
        path=found.path,
        blob_sha=found.sha,
        changes=changes,
        ignored=parsed.ignored,
        notes=parsed.notes,
    )


def fly_toml_apply(
    *,
    environment: Environment,
    release: Release,
    actor: Any,
    reviewed_blob_sha: str = "",
    ip: str | None = None,
) -> FlyTomlImport:
    """Apply what the fly.toml at ``release``'s tag declares (admins). The file is read again;
    ``reviewed_blob_sha``, when given, must still be the file's (what the admin reviewed).
    The changed values must pass the environment's validation; one audit event records the
    changes with the file, its blob and its commit."""
    if not policy.can_administer(actor):
        raise Refused("forbidden", "Only admins may change the declared config.")
    read = fly_toml_read(environment=environment, release=release)
    if reviewed_blob_sha and read.blob_sha != reviewed_blob_sha:
        raise Refused(
            "fly_toml_changed",
            f"{read.path} at {release.tag} changed since it was reviewed; read it again.",
        )
    with transaction.atomic():
        env = Environment.objects.select_for_update().select_related("app").get(pk=environment.pk)
        changes = [c for c in read.changes if getattr(env, c.field) != c.proposed]
        for change in changes:
            setattr(env, change.field, change.proposed)
        try:
            env.full_clean()
        except ValidationError as error:
            problems = "; ".join(
                f"{_label(name) if name != '__all__' else 'config'}: {' '.join(messages)}"
                for name, messages in error.message_dict.items()
            )
            raise Refused(
                "invalid_config", f"{read.path} at {release.tag} declares {problems}"
            ) from error
        if changes:
            env.save(update_fields=[c.field for c in changes])
            record(
                actor=actor,
                verb="environment.config_imported",
                target=env,
                scope=env,
                data={
                    "path": read.path,
                    "ref": release.tag,
                    "commit_sha": read.commit_sha,
                    "blob_sha": read.blob_sha,
                    "changes": {c.field: [c.current, c.proposed] for c in changes},
                    "ignored": read.ignored,
                },
                ip=ip,
            )
    environment.refresh_from_db()
    return read


def config_reconcile_request(
    *, environment: Environment, actor: Any, reason: str, ip: str | None = None
) -> Deploy:
    """Ask for a reconcile: the declared config rolled out onto the environment's machines
    through the normal engine (batches, health checks, approval where the environment needs
    one), each machine keeping its image (admins, with a reason). Raises
    Refused (also from the request's gates)."""
    if not policy.can_administer(actor):
        raise Refused("forbidden", "Only admins may reconcile machines.")
    if not reason.strip():
        raise Refused("reason_required", "Say why: a reason is required.")
    release = environment.current_release
    if release is None:
        raise Refused("nothing_live", f"{environment} has no live release to reconcile.")
    return deploy_request(
        environment=environment,
        release=release,
        kind=Deploy.Kind.RECONCILE,
        requested_by=actor,
        reason=reason,
        ip=ip,
    )
