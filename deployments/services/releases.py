"""Releases from GitHub: sync (webhook, beat, "Sync now"), validation, changelog, bad marks.

Network first, then one short transaction per release: everything GitHub says about a
release is fetched into a :class:`RemoteRelease`, then stored with its audit events. A tag
that is not SemVer is stored as ``rejected`` with the reason; a release deleted on GitHub
keeps its row and gets ``deleted_on_github_at``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.audit import record
from deployments import semver
from deployments.models import App, Build, Release
from deployments.services.checks import ci_checks_evaluate
from hotdash.integrations import APIError, PermanentAPIError, github_client
from hotdash.integrations.github import Commit, parse_release
from hotdash.integrations.github import Release as GitHubRelease

CHANGELOG_GROUPS = (
    ("features", "Features", ("feat",)),
    ("fixes", "Fixes", ("fix",)),
    ("performance", "Performance", ("perf",)),
    ("other", "Other", ()),
)
_CONVENTIONAL = re.compile(
    r"^(?P<type>[A-Za-z]+)(?:\((?P<scope>[^)]*)\))?(?P<breaking>!)?:\s*(?P<subject>.+)$"
)
_PR_NUMBER = re.compile(r"(?:\(#(\d+)\)|[Mm]erge pull request #(\d+))")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# CI may put the pushed image into the release notes: "Image: registry/app:tag@sha256:<hex>".
_NOTES_IMAGE = re.compile(
    r"^\s*(?:[-*]\s*)?image:\s*(?P<ref>\S+?)@(?P<digest>sha256:[0-9a-f]{64})\s*$",
    re.IGNORECASE | re.MULTILINE,
)
WEBHOOK_ACTIONS = ("published", "prereleased", "released", "edited", "created", "deleted")


class ReleaseWebhookIgnored(Exception):
    """A ``release`` delivery HotDash does not act on (unknown app, draft, unknown action,
    malformed payload). The dispatcher records the delivery as ignored with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReleaseSyncFailed(Exception):
    """GitHub could not be read; nothing about the unread releases was changed."""


# --- pure builders (also used by seed_demo) --------------------------------------------------


def artifact_name(*, app_name: str, version: str) -> str:
    return f"{app_name}-{version}.tar.gz"


def changelog_build(
    *, commits: Iterable[Commit], repo_full_name: str, base_tag: str | None, head_tag: str
) -> dict[str, Any]:
    """The commits between two tags grouped by conventional-commit type, with PR links."""
    groups: dict[str, list[dict[str, Any]]] = {key: [] for key, _, _ in CHANGELOG_GROUPS}
    for commit in commits:
        first_line = commit.message.strip().splitlines()[0] if commit.message.strip() else ""
        match = _CONVENTIONAL.match(first_line)
        kind = match["type"].lower() if match else ""
        group = next((key for key, _, types in CHANGELOG_GROUPS if kind in types), "other")
        prs = sorted({int(a or b) for a, b in _PR_NUMBER.findall(commit.message)})
        groups[group].append(
            {
                "sha": commit.sha,
                "type": kind,
                "scope": (match["scope"] or "") if match else "",
                "breaking": bool(match and match["breaking"])
                or "BREAKING CHANGE" in commit.message,
                "subject": match["subject"] if match else first_line,
                "author": commit.author_login or commit.author_name,
                "author_id": commit.author_id,
                "prs": [
                    {"number": n, "url": f"https://github.com/{repo_full_name}/pull/{n}"}
                    for n in prs
                ],
            }
        )
    compare = (
        f"https://github.com/{repo_full_name}/compare/{base_tag}...{head_tag}" if base_tag else ""
    )
    return {
        "base": base_tag or "",
        "head": head_tag,
        "compare_url": compare,
        "commit_count": sum(len(entries) for entries in groups.values()),
        "groups": [
            {"key": key, "title": title, "entries": groups[key]}
            for key, title, _ in CHANGELOG_GROUPS
            if groups[key]
        ],
    }


def _check(name: str, ok: bool, message: str) -> dict[str, Any]:
    return {"check": name, "ok": ok, "message": message}


def version_file_check(
    *, path: str, tag: str, version: str, content: bytes | None
) -> dict[str, Any]:
    """The app's version file at the tag must state the tag's version."""
    if content is None:
        return _check("version_file", False, f"{path} does not exist at {tag}.")
    if path.endswith(".json"):
        try:
            stated = json.loads(content).get("version")
        except (ValueError, AttributeError):
            return _check("version_file", False, f"{path} at {tag} is not a JSON object.")
        if not isinstance(stated, str):
            return _check("version_file", False, f'{path} at {tag} has no "version" string.')
    else:
        stated = content.decode("utf-8", "replace").strip()
    if stated != version:
        return _check(
            "version_file",
            False,
            f"{path} at {tag} says version {stated!r}, but the tag is {tag} ({version}).",
        )
    return _check("version_file", True, f"{path} at {tag} says {version}.")


def artifact_checks(
    *, artifact: str, assets: Iterable[dict[str, Any]], checksum_text: str | None
) -> list[dict[str, Any]]:
    """The artifact and its ``.sha256`` are attached, and the checksum equals the digest
    GitHub computed for the artifact. ``checksum_text`` is the ``.sha256`` file's content."""
    by_name = {asset["name"]: asset for asset in assets}
    checksum_name = f"{artifact}.sha256"
    missing = [name for name in (artifact, checksum_name) if name not in by_name]
    if missing:
        presence = _check("artifact", False, f"Missing release asset(s): {', '.join(missing)}.")
    else:
        presence = _check("artifact", True, f"{artifact} and {checksum_name} are attached.")
    if artifact not in by_name or checksum_text is None:
        return [
            presence,
            _check("checksum", False, f"Cannot compare: {checksum_name} or {artifact} is missing."),
        ]
    fields = checksum_text.split()
    stated = fields[0].lower() if fields else ""
    digest = by_name[artifact].get("digest") or ""
    if not _SHA256_HEX.match(stated):
        checksum = _check(
            "checksum", False, f"{checksum_name} does not start with a SHA-256 hex digest."
        )
    elif len(fields) > 1 and fields[1].lstrip("*") != artifact:
        checksum = _check(
            "checksum", False, f"{checksum_name} names {fields[1]!r}, not {artifact}."
        )
    elif not digest.startswith("sha256:"):
        checksum = _check("checksum", False, f"GitHub reports no SHA-256 digest for {artifact}.")
    elif digest.removeprefix("sha256:") != stated:
        checksum = _check(
            "checksum",
            False,
            f"Checksum mismatch: {checksum_name} says {stated}, GitHub's digest of {artifact} "
            f"is {digest.removeprefix('sha256:')}.",
        )
    else:
        checksum = _check("checksum", True, f"sha256 {stated} matches GitHub's asset digest.")
    return [presence, checksum]


def image_check(*, image_ref: str, image_digest: str, commit_sha: str) -> dict[str, Any]:
    if image_ref and image_digest:
        return _check("image", True, f"{image_ref} @ {image_digest}.")
    return _check(
        "image",
        False,
        f"No image is known for commit {commit_sha[:7] or '(unknown)'}: CI must register the "
        "build (POST /api/v1/builds) or put 'Image: <ref>@sha256:<digest>' in the release notes.",
    )


# --- fetching --------------------------------------------------------------------------------


@dataclass
class RemoteRelease:
    """Everything GitHub told us about one release, ready to store."""

    github: GitHubRelease
    version: semver.Version | None
    rejection: str = ""
    commit_sha: str = ""
    changelog: dict[str, Any] = field(default_factory=dict)
    assets: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    ci_checks: list[dict[str, Any]] = field(default_factory=list)
    notes_image: tuple[str, str] = ("", "")


def _assets(github: GitHubRelease) -> list[dict[str, Any]]:
    return [
        {"id": a.id, "name": a.name, "size": a.size, "digest": a.digest or ""}
        for a in github.assets
    ]


def _previous_tag(version: semver.Version, tags: Iterable[str]) -> str | None:
    """The highest tag below ``version`` by precedence (the changelog's base)."""
    key = version.precedence_key()
    below = []
    for tag in tags:
        try:
            other = semver.parse(tag).precedence_key()
        except semver.InvalidVersion:
            continue
        if other < key:
            below.append((other, tag))
    return max(below)[1] if below else None


def _fetch(*, app: App, gh: Any, github: GitHubRelease, known_tags: Iterable[str]) -> RemoteRelease:
    """Read the version file, checksum, commits and CI state of one release from GitHub.

    A 404 is a finding (recorded as a failed check); any other API error propagates."""
    try:
        version = semver.parse(github.tag_name)
    except semver.InvalidVersion as error:
        return RemoteRelease(github=github, version=None, rejection=error.reason)
    remote = RemoteRelease(github=github, version=version, assets=_assets(github))
    tag, plain = github.tag_name, str(version)
    try:
        content: bytes | None = gh.get_file(app.version_file_path, github.tag_name)
    except PermanentAPIError as error:
        if error.status != 404:
            raise
        content = None
    artifact = artifact_name(app_name=app.name, version=plain)
    checksum_asset = next((a for a in github.assets if a.name == f"{artifact}.sha256"), None)
    checksum_text = (
        gh.download_asset(checksum_asset.id, max_bytes=64 * 1024).decode("utf-8", "replace")
        if checksum_asset
        else None
    )
    base = _previous_tag(version, known_tags)
    commits = gh.compare(base, tag).commits if base else ()
    remote.commit_sha = gh.combined_status(tag).sha
    remote.changelog = changelog_build(
        commits=commits, repo_full_name=app.github_full_name, base_tag=base, head_tag=tag
    )
    remote.checks = [
        version_file_check(path=app.version_file_path, tag=tag, version=plain, content=content),
        *artifact_checks(artifact=artifact, assets=remote.assets, checksum_text=checksum_text),
    ]
    verdict = ci_checks_evaluate(app=app, commit_sha=remote.commit_sha)
    remote.ci_checks = [
        {"name": r.name, "state": r.state, "ok": r.ok, "url": r.url, "required": r.required}
        for r in verdict.results
    ]
    found = _NOTES_IMAGE.search(github.body or "")
    if found:
        remote.notes_image = (found["ref"], found["digest"])
    return remote


# --- storing ---------------------------------------------------------------------------------


def _audit(
    *,
    release: Release,
    actor: Any,
    verb: str,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    record(actor=actor, verb=verb, target=release, app=release.app.name, data=data, ip=ip)


def _image_for(*, app: App, commit_sha: str, notes_image: tuple[str, str]) -> tuple[str, str]:
    build = Build.objects.filter(app=app, commit_sha=commit_sha).first() if commit_sha else None
    if build is not None and build.image_ref and build.image_digest:
        return build.image_ref, build.image_digest
    return notes_image


def _store(*, app: App, remote: RemoteRelease, actor: Any) -> Release:
    """Create or update the release row from ``remote``, with its audit events."""
    github = remote.github
    version = str(remote.version) if remote.version else github.tag_name
    now = timezone.now()
    with transaction.atomic():
        release = Release.objects.select_for_update().filter(app=app, version=version).first()
        created = release is None
        if created:
            release = Release(app=app, version=version)
        was = (release.validation, release.validation_results, release.deleted_on_github_at)
        release.tag = github.tag_name
        release.title = (github.name or github.tag_name)[:200]
        release.is_prerelease = _is_prerelease(github)
        release.github_release_id = github.id
        release.published_at = github.published_at or github.created_at or release.published_at
        release.synced_at = now
        release.deleted_on_github_at = None
        if remote.version is None:
            release.validation = Release.Validation.REJECTED
            release.validation_results = [
                _check(
                    "semver",
                    False,
                    f"Tag {github.tag_name!r} is not SemVer 2.0: {remote.rejection}.",
                )
            ]
        else:
            image_ref, image_digest = _image_for(
                app=app, commit_sha=remote.commit_sha, notes_image=remote.notes_image
            )
            artifact = artifact_name(app_name=app.name, version=version)
            digest = next((a["digest"] for a in remote.assets if a["name"] == artifact), "")
            checks = [
                *remote.checks,
                image_check(
                    image_ref=image_ref, image_digest=image_digest, commit_sha=remote.commit_sha
                ),
            ]
            release.commit_sha = remote.commit_sha
            release.changelog = remote.changelog
            release.assets = remote.assets
            release.ci_checks = remote.ci_checks
            release.artifact_name = artifact
            release.artifact_digest = digest
            release.artifact_sha256 = (
                digest.removeprefix("sha256:")
                if all(c["ok"] for c in checks if c["check"] in ("artifact", "checksum"))
                else ""
            )
            release.image_ref, release.image_digest = image_ref, image_digest
            release.validation_results = checks
            release.validation = (
                Release.Validation.VALID
                if all(c["ok"] for c in checks)
                else Release.Validation.INVALID
            )
        release.save()
        if created:
            _audit(
                release=release,
                actor=actor,
                verb="release.discovered",
                data={"tag": release.tag, "github_release_id": github.id},
            )
        if was[2] is not None:
            _audit(release=release, actor=actor, verb="release.restored_on_github")
        if (release.validation, release.validation_results) != was[:2]:
            failed = [c["message"] for c in release.validation_results if not c["ok"]]
            verb = (
                "release.rejected"
                if release.validation == Release.Validation.REJECTED
                else "release.validated"
            )
            _audit(
                release=release,
                actor=actor,
                verb=verb,
                data={"validation": release.validation, "problems": failed},
            )
    return release


def release_mark_deleted(*, release: Release, actor: Any) -> Release:
    """GitHub no longer has this release: keep the row, mark it, stop it being deployed."""
    with transaction.atomic():
        release = Release.objects.select_for_update().select_related("app").get(pk=release.pk)
        if release.deleted_on_github_at is None:
            release.deleted_on_github_at = timezone.now()
            release.save(update_fields=["deleted_on_github_at"])
            _audit(
                release=release,
                actor=actor,
                verb="release.deleted_on_github",
                data={"tag": release.tag},
            )
    return release


def _is_prerelease(github: GitHubRelease) -> bool:
    """Flagged on GitHub, or a SemVer prerelease tag (``-rc.1``) whatever the flag says."""
    try:
        return github.prerelease or semver.parse(github.tag_name).is_prerelease
    except semver.InvalidVersion:
        return github.prerelease


def _needs_fetch(release: Release | None, github: GitHubRelease) -> bool:
    """Unchanged valid releases are not re-read on every reconcile."""
    if release is None or release.validation != Release.Validation.VALID:
        return True
    if release.deleted_on_github_at is not None or release.github_release_id != github.id:
        return True
    return release.assets != _assets(github) or release.is_prerelease != _is_prerelease(github)


@dataclass
class SyncResult:
    app: str
    seen: int = 0
    stored: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.app}: {self.seen} release(s) on GitHub, {len(self.stored)} updated"
            + (f" ({', '.join(self.stored)})" if self.stored else "")
            + (
                f", {len(self.deleted)} marked deleted ({', '.join(self.deleted)})"
                if self.deleted
                else ""
            )
            + "."
        )


def release_sync(*, app: App, actor: Any, ip: str | None = None) -> SyncResult:
    """Reconcile the app's releases with GitHub: new and changed ones are fetched, validated
    and stored; ones gone from GitHub are marked deleted. Raises ReleaseSyncFailed when
    GitHub cannot be read (nothing about unread releases changes)."""
    result = SyncResult(app=app.name)
    try:
        with github_client(app.github_owner, app.github_repo) as gh:
            remote = [r for r in gh.list_releases() if not r.draft]
            result.seen = len(remote)
            existing = {r.tag: r for r in Release.objects.filter(app=app)}
            tags = [r.tag_name for r in remote]
            for github in remote:
                if _needs_fetch(existing.get(github.tag_name), github):
                    fetched = _fetch(app=app, gh=gh, github=github, known_tags=tags)
                    _store(app=app, remote=fetched, actor=actor)
                    result.stored.append(github.tag_name)
    except APIError as error:
        raise ReleaseSyncFailed(
            f"Could not read releases of {app.github_full_name} from GitHub: {error}"
        ) from error
    present = set(tags)
    for release in Release.objects.filter(app=app, deleted_on_github_at__isnull=True).exclude(
        tag__in=present
    ):
        release_mark_deleted(release=release, actor=actor)
        result.deleted.append(release.tag)
    if result.stored or result.deleted or not isinstance(actor, str):
        with transaction.atomic():
            record(
                actor=actor,
                verb="release.synced",
                target=app,
                app=app.name,
                ip=ip,
                data={"seen": result.seen, "stored": result.stored, "deleted": result.deleted},
            )
    return result


def release_sync_all(*, actor: Any) -> dict[str, str]:
    """Sync every app; one app's failure does not stop the others."""
    outcome = {}
    for app in App.objects.all():
        try:
            outcome[app.name] = release_sync(app=app, actor=actor).summary()
        except ReleaseSyncFailed as error:
            outcome[app.name] = f"failed: {error}"
    return outcome


def release_handle_webhook(
    *, app: App | None, action: str, payload: dict[str, Any]
) -> Release | None:
    """Apply one ``release`` webhook. ``app`` is the App whose repository sent it (None when
    no app has that repository). Raises ReleaseWebhookIgnored for deliveries HotDash does not
    act on; a tag that is not SemVer is stored as a rejected release (and returned)."""
    if app is None:
        repo = (payload.get("repository") or {}).get("full_name") or "(no repository)"
        raise ReleaseWebhookIgnored(f"No app is configured for repository {repo}.")
    if action not in WEBHOOK_ACTIONS:
        raise ReleaseWebhookIgnored(f"Release action {action!r} needs no work.")
    data = payload.get("release")
    if not (
        isinstance(data, dict)
        and isinstance(data.get("id"), int)
        and isinstance(data.get("tag_name"), str)
    ):
        raise ReleaseWebhookIgnored(
            "Malformed release payload: release.id (integer) and release.tag_name (string) "
            "are required."
        )
    try:
        github = parse_release(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ReleaseWebhookIgnored(f"Malformed release payload: {error!r}.") from None
    if action == "deleted":
        release = Release.objects.filter(app=app, tag=github.tag_name).first()
        if release is None:
            raise ReleaseWebhookIgnored(f"{github.tag_name} was never synced; nothing to mark.")
        return release_mark_deleted(release=release, actor="github")
    if github.draft:
        raise ReleaseWebhookIgnored(f"{github.tag_name} is a draft; drafts are not releases.")
    tags = {
        *Release.objects.filter(app=app, deleted_on_github_at__isnull=True).values_list(
            "tag", flat=True
        ),
        github.tag_name,
    }
    try:
        with github_client(app.github_owner, app.github_repo) as gh:
            remote = _fetch(app=app, gh=gh, github=github, known_tags=tags)
    except APIError as error:
        raise ReleaseSyncFailed(f"Could not read {github.tag_name} from GitHub: {error}") from error
    return _store(app=app, remote=remote, actor="github")


# --- the bad mark ----------------------------------------------------------------------------


def release_mark_bad(
    *, release: Release, actor: Any, reason: str, ip: str | None = None
) -> Release:
    """Mark ``release`` bad (it cannot be deployed until the mark is cleared)."""
    if not reason.strip():
        raise ValueError("A reason is required to mark a release bad.")
    with transaction.atomic():
        release = Release.objects.select_for_update().select_related("app").get(pk=release.pk)
        if release.bad_marked_at is None:
            release.bad_marked_at = timezone.now()
            release.bad_marked_by = actor if not isinstance(actor, str) else None
            release.bad_reason = reason.strip()
            release.save(update_fields=["bad_marked_at", "bad_marked_by", "bad_reason"])
            _audit(
                release=release,
                actor=actor,
                verb="release.marked_bad",
                data={"reason": release.bad_reason},
                ip=ip,
            )
    return release


def release_clear_bad(
    *, release: Release, actor: Any, reason: str, ip: str | None = None
) -> Release:
    """Clear the bad mark, saying why; the release becomes deployable again if it is valid."""
    if not reason.strip():
        raise ValueError("Say why the release is fine again: a reason is required.")
    with transaction.atomic():
        release = Release.objects.select_for_update().select_related("app").get(pk=release.pk)
        if release.bad_marked_at is not None:
            previous = release.bad_reason
            release.bad_marked_at = None
            release.bad_marked_by = None
            release.bad_reason = ""
            release.save(update_fields=["bad_marked_at", "bad_marked_by", "bad_reason"])
            _audit(
                release=release,
                actor=actor,
                verb="release.bad_mark_cleared",
                data={"reason": reason.strip(), "was": previous},
                ip=ip,
            )
    return release
