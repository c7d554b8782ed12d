"""Adding an app from a repository: read its ``fly.toml`` / ``fly.<env>.toml`` files and its
default branch's protection, propose the app and its environments, create them when an admin
confirms (audited ``app.added``), sync the releases and say what is still missing to deploy."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from approvals import policy
from approvals.audit import record
from deployments import fly_toml
from deployments.models import App, Environment, InstallationRepository, Release
from deployments.services.releases import ReleaseSyncFailed, release_sync
from hotdash.errors import Refused
from hotdash.integrations import APIError, PermanentAPIError, fly_client, github_app, github_client

REPOSITORY = re.compile(
    r"^(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})/(?P<repo>[A-Za-z0-9._-]{1,100})$"
)
FLY_TOML = re.compile(r"^fly(?:\.(?P<env>[a-z0-9][a-z0-9-]{0,59}))?\.toml$")
# What a repository's plain fly.toml stands for, when no file of that name claims it.
DEFAULT_FILE_ENVIRONMENTS = ("production", "staging")


@dataclass(frozen=True)
class ProposedEnvironment:
    name: str
    kind: str
    path: str  # the file it comes from
    blob_sha: str
    fly_app_name: str
    machine_count: int
    values: dict[str, Any]  # Environment field values the file declares
    ignored: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def region(self) -> str:
        return self.values.get("region") or Environment._meta.get_field("region").get_default()


@dataclass(frozen=True)
class AppProposal:
    owner: str
    repo: str
    name: str
    default_branch: str
    fly_org: str
    required_checks: tuple[str, ...]
    preview_app_template: str
    environments: tuple[ProposedEnvironment, ...]
    notes: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def fingerprint(self) -> str:
        """Changes when anything proposed changes: what an admin reviewed must be what is
        created."""
        parts = [self.name, self.default_branch, self.fly_org, *self.required_checks]
        parts += [f"{e.name}:{e.path}:{e.blob_sha}" for e in self.environments]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ChecklistItem:
    label: str
    done: bool
    detail: str
    link: str = ""


@dataclass
class AppAdded:
    app: App
    proposal: AppProposal
    synced: str  # what the release sync did, or why it could not
    checklist: list[ChecklistItem] = field(default_factory=list)


def _split(full_name: str) -> tuple[str, str]:
    match = REPOSITORY.match(full_name.strip())
    if match is None:
        raise Refused(
            "invalid_repository",
            f"{full_name.strip()[:120]!r} is not a repository: name it as OWNER/NAME, "
            "e.g. acme/shop.",
        )
    return match["owner"], match["repo"]


def _not_visible(full_name: str) -> Refused:
    return Refused(
        "repository_not_visible",
        f"The GitHub App cannot see {full_name}: install the App on it (or add it to the App's "
        "installation), then read the installations again.",
    )


def _environment_names(files: list[str]) -> dict[str, str]:
    """File -> environment name: ``fly.<env>.toml`` is ``<env>``; a plain ``fly.toml`` is the
    first of production, staging that no file of its own claims."""
    named = {path: match["env"] for path in files if (match := FLY_TOML.match(path))}
    claimed = {env for env in named.values() if env}
    result = {path: env for path, env in named.items() if env}
    if "fly.toml" in named:
        free = next((env for env in DEFAULT_FILE_ENVIRONMENTS if env not in claimed), None)
        if free is not None:
            result["fly.toml"] = free
    return result


def _propose_environment(name: str, found: Any, branch: str) -> ProposedEnvironment:
    try:
        parsed = fly_toml.parse(found.content.decode("utf-8"))
    except (UnicodeDecodeError, fly_toml.FlyTomlError) as error:
        raise Refused(
            "fly_toml_invalid", f"{found.path} on {branch} cannot be read: {error}"
        ) from error
    if not parsed.fly_app:
        raise Refused(
            "fly_toml_invalid",
            f'{found.path} on {branch} names no Fly app: add app = "<fly app name>" to it.',
        )
    running = parsed.values.get("min_machines_running") or 0
    notes = list(parsed.notes)
    notes.append(
        f"Machine count {max(1, running)}: the file keeps {running} running at least "
        "(fly.toml has no machine count); change it after adding if you run more."
    )
    return ProposedEnvironment(
        name=name,
        kind=Environment.Kind.PRODUCTION if name == "production" else Environment.Kind.STAGING,
        path=found.path,
        blob_sha=found.sha,
        fly_app_name=parsed.fly_app,
        machine_count=max(1, running),
        values=parsed.values,
        ignored=tuple(parsed.ignored),
        notes=tuple(notes),
    )


def app_propose(*, full_name: str) -> AppProposal:
    """What adding ``owner/name`` would create, read from GitHub (and which Fly organisation
    its first Fly app belongs to). Refused, creating nothing, when the repository is not one
    the GitHub App can see, is already an app, or has no readable Fly configuration."""
    owner, repo = _split(full_name)
    full_name = f"{owner}/{repo}"
    if App.objects.filter(github_owner__iexact=owner, github_repo__iexact=repo).exists():
        raise Refused("app_exists", f"{full_name} is already an app in HotDash.")
    if (
        github_app() is not None
        and not InstallationRepository.objects.filter(full_name__iexact=full_name).exists()
    ):
        raise _not_visible(full_name)
    try:
        with github_client(owner, repo) as github:
            repository = github.get_repository()
            branch = repository.default_branch
            files = _environment_names(github.list_top_level_files(branch))
            if not files:
                raise Refused(
                    "fly_toml_missing",
                    f"{full_name} has no fly.toml or fly.<environment>.toml at the root of "
                    f"{branch}.",
                )
            environments = [
                _propose_environment(env, github.get_repo_file(path, branch), branch)
                for path, env in sorted(files.items(), key=lambda item: item[1])
            ]
            protection = github.branch_protection(branch)
    except PermanentAPIError as error:
        if error.status in (403, 404):
            raise _not_visible(full_name) from error
        raise _upstream(error) from error
    except APIError as error:
        raise _upstream(error) from error
    notes = []
    if protection is None:
        notes.append(
            f"{branch} is not protected: with no required checks, every check must pass "
            "before a deploy."
        )
    files_of: dict[str, str] = {}
    for environment in environments:
        other = files_of.setdefault(environment.fly_app_name, environment.path)
        if other != environment.path:
            raise Refused(
                "fly_app_taken",
                f"{other} and {environment.path} both configure the Fly app "
                f"{environment.fly_app_name}: each environment needs a Fly app of its own.",
            )
    name = slugify(repo)[:60]
    if App.objects.filter(name=name).exists():
        name = slugify(f"{owner}-{repo}")[:60]
    taken = Environment.objects.filter(
        fly_app_name__in=[e.fly_app_name for e in environments]
    ).values_list("fly_app_name", flat=True)
    if taken:
        raise Refused(
            "fly_app_taken",
            f"The Fly app {', '.join(sorted(taken))} already belongs to another environment.",
        )
    return AppProposal(
        owner=owner,
        repo=repo,
        name=name,
        default_branch=branch,
        fly_org=_fly_org(environments, default=owner),
        required_checks=protection.required_checks if protection else (),
        preview_app_template=App._meta.get_field("preview_app_template").get_default(),
        environments=tuple(environments),
        notes=tuple(notes),
    )


def _upstream(error: APIError) -> Refused:
    return Refused(
        "upstream_error",
        f"Could not read the repository from GitHub ({error.status or 'no response'}).",
    )


def _fly_org(environments: list[ProposedEnvironment], *, default: str) -> str:
    """The organisation of the first Fly app the Fly token can see (else ``default``)."""
    try:
        with fly_client() as fly:
            for environment in environments:
                found = fly.find_app(environment.fly_app_name)
                if found is not None and found.org_slug:
                    return found.org_slug
    except APIError:
        pass  # the checklist says which Fly apps the token cannot see
    return default


def app_add(*, actor: Any, full_name: str, reviewed: str = "", ip: str | None = None) -> AppAdded:
    """Create the app and its environments as proposed (admins), reading the repository
    again; ``reviewed``, when given, must be the fingerprint of what the admin reviewed. Then
    sync its releases and list what is still missing to deploy."""
    if not policy.can_administer(actor):
        raise Refused("forbidden", "Only admins may add apps.")
    proposal = app_propose(full_name=full_name)
    if reviewed and reviewed != proposal.fingerprint:
        raise Refused(
            "proposal_changed",
            f"{proposal.full_name} changed since it was reviewed; review the proposal again.",
        )
    with transaction.atomic():
        app = App(
            name=proposal.name,
            github_owner=proposal.owner,
            github_repo=proposal.repo,
            fly_org=proposal.fly_org,
            required_checks=list(proposal.required_checks),
            preview_app_template=proposal.preview_app_template,
        )
        _valid(app, proposal.full_name)
        app.save()
        for proposed in proposal.environments:
            environment = Environment(
                app=app,
                name=proposed.name,
                kind=proposed.kind,
                fly_app_name=proposed.fly_app_name,
                machine_count=proposed.machine_count,
                **proposed.values,
            )
            _valid(environment, proposed.path)
            environment.save()
        record(
            actor=actor,
            verb="app.added",
            target=app,
            app=app.name,
            data={
                "repository": proposal.full_name,
                "default_branch": proposal.default_branch,
                "environments": {
                    e.name: {"file": e.path, "blob": e.blob_sha, "fly_app": e.fly_app_name}
                    for e in proposal.environments
                },
                "required_checks": list(proposal.required_checks),
                "preview_app_template": proposal.preview_app_template,
            },
            ip=ip,
        )
    try:
        result = release_sync(app=app, actor=actor, ip=ip)
        synced = f"{result.seen} release(s) on GitHub, {len(result.stored)} stored."
    except ReleaseSyncFailed as error:
        synced = str(error)
    return AppAdded(app=app, proposal=proposal, synced=synced, checklist=app_checklist(app=app))


def _valid(instance: Any, source: str) -> None:
    try:
        instance.full_clean(exclude=["app"] if isinstance(instance, Environment) else None)
    except ValidationError as error:
        problems = "; ".join(
            f"{name if name != '__all__' else 'config'}: {' '.join(messages)}"
            for name, messages in error.message_dict.items()
        )
        raise Refused("invalid_config", f"{source} declares {problems}") from error


def app_checklist(*, app: App) -> list[ChecklistItem]:
    """What is still missing before the app's first deploy (reads Fly for its apps)."""
    releases = Release.objects.filter(app=app, deleted_on_github_at__isnull=True)
    github_releases = f"https://github.com/{app.github_full_name}/releases"
    items = [
        ChecklistItem(
            label="A release on GitHub",
            done=releases.exists(),
            detail=f"{releases.count()} release(s) synced."
            if releases.exists()
            else "No release yet: publish a GitHub release of a tag.",
            link=github_releases,
        ),
        ChecklistItem(
            label="A release with a checksum asset",
            done=releases.exclude(artifact_sha256="").exists(),
            detail="Deploys verify the artifact against its <name>.sha256 asset."
            if releases.exclude(artifact_sha256="").exists()
            else "No release has a <artifact>.sha256 asset yet: have CI attach one.",
            link=github_releases,
        ),
        ChecklistItem(
            label="Required checks",
            done=bool(app.required_checks),
            detail=", ".join(app.required_checks)
            if app.required_checks
            else "None named: every check on a release's commit must pass.",
            link=f"https://github.com/{app.github_full_name}/settings/branches",
        ),
    ]
    try:
        with fly_client() as fly:
            for environment in app.environments.order_by("name"):
                found = fly.find_app(environment.fly_app_name)
                items.append(
                    ChecklistItem(
                        label=f"Fly token can see {environment.fly_app_name}",
                        done=found is not None,
                        detail=f"{environment.name}: in {found.org_slug}."
                        if found is not None
                        else f"{environment.name}: the Fly token cannot see this app; create it "
                        "or give the token access.",
                        link=f"https://fly.io/apps/{environment.fly_app_name}",
                    )
                )
    except APIError as error:
        items.append(
            ChecklistItem(
                label="Fly token can see the apps",
                done=False,
                detail=f"Could not read Fly ({error.status or 'no response'}).",
            )
        )
    return items
