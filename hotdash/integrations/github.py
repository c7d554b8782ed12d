"""GitHub REST API client bound to one repository, and the webhook payload parser.

Paths, fields and codes follow the GitHub REST API documentation. Every list follows
``Link: rel="next"``. Responses are parsed into frozen dataclasses at this boundary.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from .github_app import github_app
from .http import (
    GITHUB,
    ApiClient,
    Credentials,
    PermanentAPIError,
    RetryableAPIError,
    StaticToken,
    build_client,
)

# Key in a deployment's payload that identifies which HotDash request created it.
DEPLOYMENT_KEY = "hotdash_key"
PER_PAGE = 100


def _dt(value: Any) -> datetime | None:
    """GitHub timestamps: ISO 8601 strings, or (in some webhook fields) epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _login(user: Mapping[str, Any] | None) -> str:
    return (user or {}).get("login") or ""


@dataclass(frozen=True)
class ReleaseAsset:
    id: int
    name: str
    size: int
    content_type: str
    digest: str | None  # "sha256:<hex>", or None for assets uploaded before digests existed
    browser_download_url: str


@dataclass(frozen=True)
class Release:
    id: int
    tag_name: str
    name: str
    body: str
    draft: bool
    prerelease: bool
    target_commitish: str
    html_url: str
    created_at: datetime | None
    published_at: datetime | None
    assets: tuple[ReleaseAsset, ...]


@dataclass(frozen=True)
class RepoFile:
    """One file of the repository at a ref; ``sha`` is its blob's (the git object id)."""

    path: str
    sha: str
    content: bytes


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str
    author_name: str
    author_login: str
    date: datetime | None
    author_id: int | None = None  # the GitHub user id, when GitHub tied the commit to an account


@dataclass(frozen=True)
class Comparison:
    status: str  # ahead / behind / identical / diverged
    ahead_by: int
    behind_by: int
    total_commits: int
    commits: tuple[Commit, ...]  # oldest first


@dataclass(frozen=True)
class Deployment:
    id: int
    sha: str
    ref: str
    task: str
    environment: str
    description: str
    payload: Mapping[str, Any]
    production_environment: bool
    transient_environment: bool
    created_at: datetime | None


@dataclass(frozen=True)
class DeploymentStatus:
    id: int
    state: str
    description: str
    environment: str
    environment_url: str
    log_url: str
    created_at: datetime | None


@dataclass(frozen=True)
class IssueComment:
    id: int
    body: str
    user_login: str
    html_url: str
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class PullRequest:
    number: int
    state: str  # open / closed
    title: str
    body: str
    draft: bool
    user_login: str
    html_url: str
    head_ref: str
    head_sha: str
    head_repo: str  # "owner/name"; differs from the base repo for forks
    base_ref: str
    merged: bool
    merged_at: datetime | None
    merge_commit_sha: str | None


@dataclass(frozen=True)
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    html_url: str


@dataclass(frozen=True)
class CommitStatus:
    context: str
    state: str
    description: str
    target_url: str


@dataclass(frozen=True)
class CombinedStatus:
    state: str  # success / pending / failure
    sha: str
    total_count: int
    statuses: tuple[CommitStatus, ...]


@dataclass(frozen=True)
class BranchProtection:
    required_checks: tuple[str, ...]
    strict: bool  # branches must be up to date before merging
    enforce_admins: bool
    required_approving_review_count: int
    dismiss_stale_reviews: bool
    required_conversation_resolution: bool
    required_linear_history: bool
    allow_force_pushes: bool
    allow_deletions: bool


@dataclass(frozen=True)
class Repository:
    full_name: str
    default_branch: str
    # security_and_analysis: None when GitHub does not say (no admin access to the repository).
    secret_scanning: bool | None
    secret_scanning_push_protection: bool | None


@dataclass(frozen=True)
class SecretScanningAlert:
    """An alert without the secret it found (it is asked for hidden, and never kept)."""

    number: int
    state: str  # open / resolved
    secret_type: str
    secret_type_display_name: str
    created_at: datetime | None


@dataclass(frozen=True)
class ActionsSecret:
    name: str
    created_at: datetime | None
    updated_at: datetime | None


def _parse_asset(data: Mapping[str, Any]) -> ReleaseAsset:
    return ReleaseAsset(
        id=data["id"],
        name=data["name"],
        size=data.get("size") or 0,
        content_type=data.get("content_type") or "",
        digest=data.get("digest"),
        browser_download_url=data.get("browser_download_url") or "",
    )


def parse_release(data: Mapping[str, Any]) -> Release:
    """A Release from the REST API or a ``release`` webhook payload."""
    return Release(
        id=data["id"],
        tag_name=data["tag_name"],
        name=data.get("name") or data["tag_name"],
        body=data.get("body") or "",
        draft=bool(data.get("draft")),
        prerelease=bool(data.get("prerelease")),
        target_commitish=data.get("target_commitish") or "",
        html_url=data.get("html_url") or "",
        created_at=_dt(data.get("created_at")),
        published_at=_dt(data.get("published_at")),
        assets=tuple(_parse_asset(asset) for asset in data.get("assets") or ()),
    )


def _parse_commit(data: Mapping[str, Any]) -> Commit:
    detail = data.get("commit") or {}
    author = detail.get("author") or {}
    return Commit(
        sha=data["sha"],
        message=detail.get("message", ""),
        author_name=author.get("name", ""),
        author_login=_login(data.get("author")),
        date=_dt(author.get("date")),
        author_id=(data.get("author") or {}).get("id"),
    )


def _parse_deployment(data: Mapping[str, Any]) -> Deployment:
    payload = data.get("payload") or {}
    if isinstance(payload, str):  # GitHub accepts and may echo a JSON string
        try:
            payload = json.loads(payload) if payload else {}
        except ValueError:
            payload = {}
    return Deployment(
        id=data["id"],
        sha=data.get("sha", ""),
        ref=data.get("ref", ""),
        task=data.get("task", ""),
        environment=data.get("environment", ""),
        description=data.get("description") or "",
        payload=payload if isinstance(payload, dict) else {},
        production_environment=bool(data.get("production_environment")),
        transient_environment=bool(data.get("transient_environment")),
        created_at=_dt(data.get("created_at")),
    )


def _parse_deployment_status(data: Mapping[str, Any]) -> DeploymentStatus:
    return DeploymentStatus(
        id=data["id"],
        state=data["state"],
        description=data.get("description") or "",
        environment=data.get("environment") or "",
        environment_url=data.get("environment_url") or "",
        log_url=data.get("log_url") or data.get("target_url") or "",
        created_at=_dt(data.get("created_at")),
    )


def _parse_comment(data: Mapping[str, Any]) -> IssueComment:
    return IssueComment(
        id=data["id"],
        body=data.get("body") or "",
        user_login=_login(data.get("user")),
        html_url=data.get("html_url") or "",
        created_at=_dt(data.get("created_at")),
        updated_at=_dt(data.get("updated_at")),
    )


def parse_pull_request(data: Mapping[str, Any]) -> PullRequest:
    """A PullRequest from the REST API (full or list form) or a webhook payload."""
    head = data.get("head") or {}
    base = data.get("base") or {}
    merged_at = _dt(data.get("merged_at"))
    return PullRequest(
        number=data["number"],
        state=data["state"],
        title=data.get("title") or "",
        body=data.get("body") or "",
        draft=bool(data.get("draft")),
        user_login=_login(data.get("user")),
        html_url=data.get("html_url") or "",
        head_ref=head.get("ref", ""),
        head_sha=head.get("sha", ""),
        head_repo=(head.get("repo") or {}).get("full_name", ""),
        base_ref=base.get("ref", ""),
        # The list form has no "merged"; merged_at is the reliable signal.
        merged=bool(data.get("merged")) or merged_at is not None,
        merged_at=merged_at,
        merge_commit_sha=data.get("merge_commit_sha"),
    )


class GitHubClient:
    """The GitHub REST API for one repository. Every method raises APIError subclasses."""

    def __init__(self, api: ApiClient, owner: str, repo: str) -> None:
        self.api = api
        self.owner = owner
        self.repo = repo
        self._base = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _list(self, path: str, item_key: str | None = None, **params: Any) -> list[Any]:
        query = {"per_page": PER_PAGE, **{k: v for k, v in params.items() if v is not None}}
        return list(self.api.paginate(self._base + path, params=query, item_key=item_key))

    # --- releases ------------------------------------------------------------------------

    def list_releases(self) -> list[Release]:
        """Every release, newest first (drafts only with push access)."""
        return [parse_release(item) for item in self._list("/releases")]

    def get_release_by_tag(self, tag: str) -> Release:
        """The published release of a tag; 404 when there is none."""
        return parse_release(self.api.get_json(f"{self._base}/releases/tags/{quote(tag)}"))

    def list_release_assets(self, release_id: int) -> list[ReleaseAsset]:
        """Every asset of a release, with its ``digest`` when GitHub computed one."""
        return [_parse_asset(item) for item in self._list(f"/releases/{release_id}/assets")]

    def download_asset(self, asset_id: int, *, max_bytes: int = 10 * 1024 * 1024) -> bytes:
        """The bytes of an asset (following GitHub's redirect to storage); refuses huge ones."""
        response = self.api.request(
            "GET",
            f"{self._base}/releases/assets/{asset_id}",
            headers={"Accept": "application/octet-stream"},
        )
        if len(response.content) > max_bytes:
            raise PermanentAPIError(
                f"asset larger than {max_bytes} bytes",
                provider=GITHUB.name,
                method="GET",
                path=response.request.url.path,
                status=response.status_code,
            )
        return response.content

    def get_file(self, path: str, ref: str) -> bytes:
        """The content of one file at a ref (branch, tag or SHA)."""
        return self.get_repo_file(path, ref).content

    def get_repo_file(self, path: str, ref: str) -> RepoFile:
        """One file at a ref (branch, tag or SHA), with its blob sha."""
        body = self.api.get_json(f"{self._base}/contents/{quote(path)}", params={"ref": ref})
        if body.get("encoding") != "base64":
            raise PermanentAPIError(
                f"{path} is not a file with base64 content",
                provider=GITHUB.name,
                method="GET",
                path=f"{self._base}/contents/{path}",
                status=200,
            )
        content = base64.b64decode(body.get("content", ""))
        return RepoFile(path=path, sha=body.get("sha", ""), content=content)

    def list_top_level_files(self, ref: str) -> list[str]:
        """The names of the files at the repository's root at a ref (branch, tag or SHA)."""
        body = self.api.get_json(f"{self._base}/contents", params={"ref": ref})
        return [item["name"] for item in body if item.get("type") == "file"]

    def compare(self, base: str, head: str) -> Comparison:
        """Commits reachable from ``head`` but not ``base``, oldest first, across all pages."""
        url: str | None = f"{self._base}/compare/{quote(base)}...{quote(head)}"
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        first: dict[str, Any] | None = None
        commits: list[Commit] = []
        while url:
            response = self.api.request("GET", url, params=params)
            body = response.json()
            first = first or body
            commits.extend(_parse_commit(item) for item in body.get("commits") or ())
            url = response.links.get("next", {}).get("url")
            params = None
        assert first is not None
        return Comparison(
            status=first["status"],
            ahead_by=first.get("ahead_by", 0),
            behind_by=first.get("behind_by", 0),
            total_commits=first.get("total_commits", len(commits)),
            commits=tuple(commits),
        )

    # --- deployments ---------------------------------------------------------------------

    def list_deployments(
        self, *, ref: str | None = None, environment: str | None = None, sha: str | None = None
    ) -> list[Deployment]:
        """Deployments, newest first, filtered by ref, environment and SHA."""
        items = self._list("/deployments", ref=ref, environment=environment, sha=sha)
        return [_parse_deployment(item) for item in items]

    def find_deployment(self, *, ref: str, environment: str, key: str) -> Deployment | None:
        """The deployment HotDash created for ``key`` (see :meth:`create_deployment`)."""
        for deployment in self.list_deployments(ref=ref, environment=environment):
            if deployment.payload.get(DEPLOYMENT_KEY) == key:
                return deployment
        return None

    def create_deployment(
        self,
        *,
        ref: str,
        environment: str,
        key: str,
        description: str = "",
        payload: Mapping[str, Any] | None = None,
        required_contexts: list[str] | None = None,
        transient: bool = False,
        production: bool | None = None,
    ) -> Deployment:
        """Create one deployment of ``ref`` for ``key`` (a HotDash deploy id); never two.

        ``key`` goes into the payload; after a retryable failure the deployment is looked up by
        ref, environment and key before trying again. Auto-merge is off (we deploy exact
        tags). 201 returns the deployment. 202 (GitHub merged the default branch instead) is
        re-requested once, then raised as retryable. 409 (required statuses not green, or a
        merge conflict) and 422 raise PermanentAPIError.
        """
        body: dict[str, Any] = {
            "ref": ref,
            "environment": environment,
            "description": description[:140],
            "auto_merge": False,
            "payload": {**(payload or {}), DEPLOYMENT_KEY: key},
            "transient_environment": transient,
        }
        if required_contexts is not None:
            body["required_contexts"] = required_contexts
        if production is not None:
            body["production_environment"] = production

        def parse(response: httpx.Response) -> Deployment | str:
            if response.status_code == 201:
                return _parse_deployment(response.json())
            return str(response.json().get("message") or "deployment not created")

        outcome: Deployment | str = ""
        for _ in range(2):
            outcome = self.api.create(
                "POST",
                f"{self._base}/deployments",
                json=body,
                parse=parse,
                find=lambda: self.find_deployment(ref=ref, environment=environment, key=key),
            )
            if isinstance(outcome, Deployment):
                return outcome
        raise RetryableAPIError(
            outcome,
            provider=GITHUB.name,
            method="POST",
            path=f"{self._base}/deployments",
            status=202,
        )

    def create_deployment_status(
        self,
        deployment_id: int,
        state: str,
        *,
        description: str = "",
        environment_url: str | None = None,
        log_url: str | None = None,
        auto_inactive: bool = True,
    ) -> DeploymentStatus:
        """Add a status (pending, in_progress, success, failure, error, inactive, ...).

        Retried blindly: a repeated status is harmless because the latest one wins.
        """
        body: dict[str, Any] = {
            "state": state,
            "description": description[:140],
            "auto_inactive": auto_inactive,
        }
        if environment_url:
            body["environment_url"] = environment_url
        if log_url:
            body["log_url"] = log_url
        response = self.api.request(
            "POST",
            f"{self._base}/deployments/{deployment_id}/statuses",
            json=body,
            idempotent=True,
        )
        return _parse_deployment_status(response.json())

    def list_deployment_statuses(self, deployment_id: int) -> list[DeploymentStatus]:
        """Statuses of a deployment, newest first."""
        items = self._list(f"/deployments/{deployment_id}/statuses")
        return [_parse_deployment_status(item) for item in items]

    # --- pull requests and their comments ------------------------------------------------

    def get_pull(self, number: int) -> PullRequest:
        """One pull request (404 when there is none)."""
        return parse_pull_request(self.api.get_json(f"{self._base}/pulls/{number}"))

    def list_pulls(
        self, *, state: str = "open", head: str | None = None, base: str | None = None
    ) -> list[PullRequest]:
        """Pull requests by state (open, closed, all); ``head`` is ``owner:branch``."""
        items = self._list("/pulls", state=state, head=head, base=base)
        return [parse_pull_request(item) for item in items]

    def list_comments(self, number: int) -> list[IssueComment]:
        """Every conversation comment of an issue or pull request, oldest first."""
        return [_parse_comment(item) for item in self._list(f"/issues/{number}/comments")]

    def create_comment(self, number: int, body: str) -> IssueComment:
        """Post a comment once: after a retryable failure, an existing comment with exactly this
        body is taken as the earlier attempt's result."""

        def find() -> IssueComment | None:
            return next((c for c in self.list_comments(number) if c.body == body), None)

        return self.api.create(
            "POST",
            f"{self._base}/issues/{number}/comments",
            json={"body": body},
            parse=lambda response: _parse_comment(response.json()),
            find=find,
        )

    def update_comment(self, comment_id: int, body: str) -> IssueComment:
        """Replace a comment's body (repeating the same PATCH is harmless, so it is retried)."""
        response = self.api.request(
            "PATCH",
            f"{self._base}/issues/comments/{comment_id}",
            json={"body": body},
            idempotent=True,
        )
        return _parse_comment(response.json())

    def upsert_comment(self, number: int, marker: str, body: str) -> IssueComment:
        """Keep one comment per ``marker`` (e.g. ``<!-- hotdash:preview -->``) on a PR:
        update the comment containing it, or create it. The marker is kept in the body."""
        if marker not in body:
            body = f"{marker}\n{body}"
        for comment in self.list_comments(number):
            if marker in comment.body:
                return comment if comment.body == body else self.update_comment(comment.id, body)
        return self.create_comment(number, body)

    # --- CI state and repository settings ------------------------------------------------

    def combined_status(self, ref: str) -> CombinedStatus:
        """The combined commit status of a ref (legacy statuses, not check runs)."""
        body = self.api.get_json(f"{self._base}/commits/{quote(ref)}/status")
        return CombinedStatus(
            state=body["state"],
            sha=body.get("sha", ""),
            total_count=body.get("total_count", 0),
            statuses=tuple(
                CommitStatus(
                    context=s.get("context", ""),
                    state=s.get("state", ""),
                    description=s.get("description") or "",
                    target_url=s.get("target_url") or "",
                )
                for s in body.get("statuses") or ()
            ),
        )

    def check_runs(self, ref: str) -> list[CheckRun]:
        """The latest check run of each check for a ref, across all pages."""
        items = self._list(f"/commits/{quote(ref)}/check-runs", item_key="check_runs")
        return [
            CheckRun(
                id=item["id"],
                name=item["name"],
                head_sha=item.get("head_sha", ""),
                status=item.get("status", ""),
                conclusion=item.get("conclusion"),
                html_url=item.get("html_url") or "",
            )
            for item in items
        ]

    def branch_protection(self, branch: str) -> BranchProtection | None:
        """The branch's protection rules, or None when the branch is not protected."""
        try:
            body = self.api.get_json(f"{self._base}/branches/{quote(branch)}/protection")
        except PermanentAPIError as error:
            if error.status == 404:
                return None
            raise
        checks = body.get("required_status_checks") or {}
        contexts = [c["context"] for c in checks.get("checks") or ()] or checks.get("contexts", [])
        reviews = body.get("required_pull_request_reviews") or {}

        def enabled(name: str) -> bool:
            return bool((body.get(name) or {}).get("enabled"))

        return BranchProtection(
            required_checks=tuple(contexts),
            strict=bool(checks.get("strict")),
            enforce_admins=enabled("enforce_admins"),
            required_approving_review_count=reviews.get("required_approving_review_count", 0),
            dismiss_stale_reviews=bool(reviews.get("dismiss_stale_reviews")),
            required_conversation_resolution=enabled("required_conversation_resolution"),
            required_linear_history=enabled("required_linear_history"),
            allow_force_pushes=enabled("allow_force_pushes"),
            allow_deletions=enabled("allow_deletions"),
        )

    def get_repository(self) -> Repository:
        """The repository: its default branch, and whether secret scanning and its push
        protection are on (GitHub shows ``security_and_analysis`` to admins only)."""
        body = self.api.get_json(self._base)
        features = body.get("security_and_analysis")

        def on(name: str) -> bool | None:
            if not features or name not in features:
                return None
            return (features[name] or {}).get("status") == "enabled"

        return Repository(
            full_name=body.get("full_name", ""),
            default_branch=body.get("default_branch") or "main",
            secret_scanning=on("secret_scanning"),
            secret_scanning_push_protection=on("secret_scanning_push_protection"),
        )

    def secret_scanning_alerts(self, *, state: str = "open") -> list[SecretScanningAlert]:
        """Secret-scanning alerts by state, newest first, always with the secret hidden.
        404 (scanning off, or a public repository) raises PermanentAPIError."""
        items = self._list(
            "/secret-scanning/alerts",
            state=state,
            sort="created",
            direction="desc",
            hide_secret="true",
        )
        return [
            SecretScanningAlert(
                number=item["number"],
                state=item.get("state", ""),
                secret_type=item.get("secret_type", ""),
                secret_type_display_name=item.get("secret_type_display_name") or "",
                created_at=_dt(item.get("created_at")),
            )
            for item in items
        ]

    def actions_secrets(self) -> list[ActionsSecret]:
        """The repository's Actions secrets: names and dates (GitHub never returns values)."""
        return [
            ActionsSecret(
                name=item["name"],
                created_at=_dt(item.get("created_at")),
                updated_at=_dt(item.get("updated_at")),
            )
            for item in self._list("/actions/secrets", item_key="secrets")
        ]


def github_credentials(owner: str, repo: str) -> Credentials:
    """The one way to a GitHub token for ``owner/repo``: the installation token of the GitHub
    App installation that covers it when an App is configured (settings.GITHUB_APP_ID), else
    the personal token settings.GITHUB_TOKEN."""
    from django.conf import settings

    app = github_app()
    if app is None:
        return StaticToken(settings.GITHUB_TOKEN)
    return app.credentials_for(owner, repo)


def github_client(owner: str, repo: str, **options: Any) -> GitHubClient:
    """A GitHubClient for settings.GITHUB_API_URL with :func:`github_credentials` (options go
    to :func:`~hotdash.integrations.http.build_client`: timeout, retry, sleep, clock)."""
    from django.conf import settings

    token = github_credentials(owner, repo)
    api = build_client(GITHUB, base_url=settings.GITHUB_API_URL, token=token, **options)
    return GitHubClient(api, owner, repo)


# --- webhooks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullRequestEvent:
    action: str
    number: int
    pull_request: PullRequest
    repository: str  # "owner/name"
    sender: str
    before: str | None  # synchronize only: old head SHA
    after: str | None


@dataclass(frozen=True)
class PushCommit:
    sha: str
    message: str


@dataclass(frozen=True)
class PushEvent:
    ref: str  # refs/heads/main, refs/tags/v1.2.3
    before: str
    after: str
    created: bool
    deleted: bool
    forced: bool
    head_sha: str | None
    commits: tuple[PushCommit, ...]
    repository: str
    sender: str


@dataclass(frozen=True)
class ReleaseEvent:
    action: str
    release: Release
    repository: str
    sender: str


@dataclass(frozen=True)
class PingEvent:
    zen: str
    hook_id: int
    repository: str


INSTALLATION_EVENTS = frozenset({"installation", "installation_repositories"})


@dataclass(frozen=True)
class InstallationEvent:
    """``installation`` (created, deleted, suspend, unsuspend, new_permissions_accepted) or
    ``installation_repositories`` (added, removed): which repositories the App can see."""

    event: str
    action: str
    installation_id: int
    account: str
    added: tuple[str, ...]  # full names
    removed: tuple[str, ...]
    sender: str


WebhookEvent = PullRequestEvent | PushEvent | ReleaseEvent | PingEvent | InstallationEvent


def parse_webhook(event: str, payload: Mapping[str, Any]) -> WebhookEvent | None:
    """The events HotDash acts on, as dataclasses; None for any other event.

    ``event`` is the ``X-GitHub-Event`` header, ``payload`` the decoded (verified) body.
    """
    repository = (payload.get("repository") or {}).get("full_name", "")
    sender = _login(payload.get("sender"))
    if event == "pull_request":
        return PullRequestEvent(
            action=payload["action"],
            number=payload["number"],
            pull_request=parse_pull_request(payload["pull_request"]),
            repository=repository,
            sender=sender,
            before=payload.get("before"),
            after=payload.get("after"),
        )
    if event == "push":
        head = payload.get("head_commit")
        return PushEvent(
            ref=payload["ref"],
            before=payload["before"],
            after=payload["after"],
            created=bool(payload.get("created")),
            deleted=bool(payload.get("deleted")),
            forced=bool(payload.get("forced")),
            head_sha=head["id"] if head else None,
            commits=tuple(
                PushCommit(sha=c["id"], message=c.get("message", ""))
                for c in payload.get("commits") or ()
            ),
            repository=repository,
            sender=sender,
        )
    if event == "release":
        return ReleaseEvent(
            action=payload["action"],
            release=parse_release(payload["release"]),
            repository=repository,
            sender=sender,
        )
    if event in INSTALLATION_EVENTS:
        installation = payload["installation"]

        def names(key: str) -> tuple[str, ...]:
            return tuple(item["full_name"] for item in payload.get(key) or ())

        action = payload["action"]
        if event == "installation":
            added = names("repositories") if action != "deleted" else ()
            removed = names("repositories") if action == "deleted" else ()
        else:
            added, removed = names("repositories_added"), names("repositories_removed")
        return InstallationEvent(
            event=event,
            action=action,
            installation_id=installation["id"],
            account=_login(installation.get("account")),
            added=added,
            removed=removed,
            sender=sender,
        )
    if event == "ping":
        return PingEvent(
            zen=payload.get("zen", ""), hook_id=payload["hook_id"], repository=repository
        )
    return None
