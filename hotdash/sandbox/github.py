"""The simulated GitHub REST API (served under ``/github``) and its webhooks.

One repository, ``hotdash-demo/hot-dash``, seeded from demo.py: a linear main branch with the
demo commits, a tag and a release (with artifact and checksum assets) per demo version, and
``package.json`` at every commit. Pull requests, pushes and new releases are made through
:class:`GitHubWorld` methods, which queue webhook deliveries for the caller to send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import random
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from . import demo
from .web import Problem, Request, Response, Router

DOCS = "https://docs.github.com/rest"
REPO_ID = 424242
WORKFLOW_ID = 161335
BOT = "hotdash[bot]"
DEFAULT_CHECKS = demo.REQUIRED_CHECKS
ZERO_SHA = "0" * 40
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
DAY = 86400.0
# What the control API may change about the default branch's protection (all on, as the demo's
# policy wants them): the required checks, and GitHub's flags and review count.
PROTECTION_SETTINGS = (
    "strict",
    "required_approving_review_count",
    "dismiss_stale_reviews",
    "require_code_owner_reviews",
    "required_conversation_resolution",
    "required_linear_history",
    "allow_force_pushes",
    "allow_deletions",
    "enforce_admins",
)
SECURITY_FEATURES = ("secret_scanning", "secret_scanning_push_protection")


def default_protection() -> dict[str, Any]:
    """The demo's protection of main: every required check, strict, one approving review."""
    return {
        "required_checks": list(DEFAULT_CHECKS),
        "strict": True,
        "required_approving_review_count": 1,
        "dismiss_stale_reviews": True,
        "require_code_owner_reviews": False,
        "required_conversation_resolution": True,
        "required_linear_history": True,
        "allow_force_pushes": False,
        "allow_deletions": False,
        "enforce_admins": True,
    }


class Clock(Protocol):
    def now(self) -> float: ...
    def iso(self, at: float | None = None) -> str: ...


class WebhookTarget(Protocol):
    url: str
    secret: str
    sink: Callable[[dict[str, str], bytes], int] | None
    deliveries: list[dict[str, Any]]


def package_json(version: str) -> bytes:
    return (json.dumps({"name": demo.APP_NAME, "version": version}, indent=2) + "\n").encode()


def sign(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def node_id(kind: str, number: int) -> str:
    """A GraphQL global id: an opaque prefix and base64 text, as GitHub's look."""
    return f"{kind}_" + base64.b64encode(f"sandbox:{kind}:{number}".encode()).decode().rstrip("=")


def tree_sha(sha: str) -> str:
    return hashlib.sha1(f"tree {sha}".encode(), usedforsecurity=False).hexdigest()


def user(base: str, login: str, *, kind: str | None = None) -> dict[str, Any]:
    """GitHub's simple-user object for ``login`` (a ``[bot]`` suffix makes a Bot)."""
    number = int(hashlib.sha1(login.encode(), usedforsecurity=False).hexdigest()[:7], 16)
    api = f"{base}/users/{quote(login)}"
    return {
        "login": login,
        "id": number,
        "node_id": node_id("U", number),
        "avatar_url": f"{base}/avatars/u/{number}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{base}/{quote(login)}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind or ("Bot" if login.endswith("[bot]") else "User"),
        "user_view_type": "public",
        "site_admin": False,
    }


def invalid(resource: str, field: str, code: str = "invalid") -> dict[str, str]:
    """One entry of a 422's ``errors``, as GitHub writes it."""
    return {"resource": resource, "field": field, "code": code}


class GitHubWorld:
    """Repository state plus the GitHub routes."""

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        webhook: WebhookTarget,
        register_image: Callable[..., None],
        api_url: str,
    ) -> None:
        self.clock = clock
        self.api_url = api_url  # where webhook payloads say the API is
        self.rng = rng
        self.webhook = webhook
        self.register_image = register_image
        self.owner, self.repo = demo.REPO_OWNER, demo.REPO_NAME
        self.full_name = f"{self.owner}/{self.repo}"
        self.commits: dict[str, dict[str, Any]] = {}
        self.branches: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.releases: list[dict[str, Any]] = []  # oldest first
        self.assets: dict[int, dict[str, Any]] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.deployments: dict[int, dict[str, Any]] = {}
        self.deployment_statuses: dict[int, list[dict[str, Any]]] = {}
        self.commit_statuses: dict[str, list[dict[str, Any]]] = {}
        self.check_overrides: dict[str, dict[str, tuple[str, str | None]]] = {}
        # Forced answers for the next deployment creates (202 auto-merge, 409 conflict).
        self.next_deployment_responses: list[int] = []
        # Actions secrets by name: when each was created and last updated (values are never
        # served, so none are kept).
        self.actions_secrets: dict[str, dict[str, float]] = {}
        # The default branch's protection (None: not protected), security features, and the
        # secret-scanning alerts (each with the secret it found, served only unless hidden).
        self.protection: dict[str, Any] | None = default_protection()
        self.security = dict.fromkeys(SECURITY_FEATURES, "enabled")
        # Files served instead of the demo's at every ref (None: the file does not exist).
        self.file_overrides: dict[str, bytes | None] = {}
        self.secret_scanning_alerts: list[dict[str, Any]] = []
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        self.requests_used = 0
        self._ids: dict[str, int] = {}
        self.router = self._routes()
        self._seed()

    def _next(self, kind: str, start: int) -> int:
        self._ids[kind] = self._ids.get(kind, start - 1) + 1
        return self._ids[kind]

    # --- repository model ----------------------------------------------------------------

    def _commit(
        self, message: str, author: str, parents: list[str], version: str, at: float, sha: str = ""
    ) -> str:
        sha = sha or demo.sha1_of(f"sandbox:{message}:{at}:{parents}:{self.rng.random()}")
        self.commits[sha] = {
            "sha": sha,
            "message": message,
            "author": author,
            "date": at,
            "parents": parents,
            "version": version,
            "seq": len(self.commits),
        }
        return sha

    def _release(
        self, release: demo.DemoRelease, at: float, author: str, *, image_in_notes: bool = True
    ) -> dict[str, Any]:
        release_id = self._next("release", 1000)
        assets = []
        for name, data, content_type in (
            (release.artifact_name, release.artifact_bytes, "application/gzip"),
            (f"{release.artifact_name}.sha256", release.checksum_file, "text/plain"),
        ):
            asset_id = self._next("asset", 5000)
            self.assets[asset_id] = {
                "id": asset_id,
                "name": name,
                "data": data,
                "content_type": content_type,
                "tag": release.tag,
                "at": at,
            }
            assets.append(asset_id)
        body = "\n".join(f"- {line}" for line in release.changelog_lines)
        if image_in_notes:  # as a CI pipeline does: the notes name the image it pushed
            body += f"\n\nImage: {release.image_ref}@{release.image_digest}"
        record = {
            "id": release_id,
            "tag": release.tag,
            "prerelease": release.prerelease,
            "body": body,
            "at": at,
            "author": author,
            "assets": assets,
        }
        self.releases.append(record)
        self.tags[release.tag] = release.commit_sha
        return record

    def _seed(self) -> None:
        head: list[str] = []
        for release in demo.DEMO_RELEASES:
            published = release.published_at.timestamp()
            count = len(release.commits)
            for index, commit in enumerate(release.commits):
                at = published - (count - index) * 3600
                sha = self._commit(
                    commit.message, commit.author, head, release.version, at, commit.sha
                )
                head = [sha]
            self._release(release, published, "github-actions[bot]")
        last = demo.DEMO_RELEASES[-1].version
        main = demo.MAIN_HEAD
        at = demo.MAIN_HEAD_AT.timestamp()
        head = [self._commit(main.message, main.author, head, last, at, main.sha)]
        self.branches["main"] = head[0]
        self.check_overrides[head[0]] = {demo.OPTIONAL_CHECK: ("completed", "failure")}
        now = self.clock.now()
        for name, days in demo.ACTIONS_SECRET_AGES.items():
            at = now - days * DAY
            self.actions_secrets[name] = {"created_at": at, "updated_at": at}

    def resolve(self, ref: str) -> str | None:
        ref = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
        if ref in self.branches:
            return self.branches[ref]
        if ref in self.tags:
            return self.tags[ref]
        if len(ref) >= 7:
            return next((sha for sha in self.commits if sha.startswith(ref)), None)
        return None

    def _sha(self, ref: str, status: int = 404) -> str:
        sha = self.resolve(ref)
        if sha is None:
            raise Problem(
                status,
                f"No commit found for SHA: {ref}" if status == 404 else f"No ref found for: {ref}",
            )
        return sha

    def _ancestors(self, sha: str) -> set[str]:
        seen: set[str] = set()
        stack = [sha]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.commits[current]["parents"])
        return seen

    def check_runs_for(self, sha: str) -> dict[str, tuple[str, str | None]]:
        runs: dict[str, tuple[str, str | None]] = dict.fromkeys(
            DEFAULT_CHECKS, ("completed", "success")
        )
        runs.update(self.check_overrides.get(sha, {}))
        return runs

    def set_check(
        self, ref: str, name: str, status: str = "completed", conclusion: str | None = "success"
    ) -> None:
        """Make check run ``name`` of a ref report ``status``/``conclusion``; queues the
        webhooks GitHub sends when a run, and then its whole suite, completes."""
        sha = self._sha(ref)
        self.check_overrides.setdefault(sha, {})[name] = (status, conclusion)
        if status != "completed":
            return
        base = self.api_url
        run = self.check_run_json(base, sha, name, status, conclusion)
        self._queue("check_run", self._payload(action="completed", check_run=run, actor=BOT))
        runs = self.check_runs_for(sha)
        if all(state == "completed" for state, _ in runs.values()):
            outcomes = {result for _, result in runs.values()}
            overall = "failure" if outcomes - {"success", "skipped", "neutral"} else "success"
            suite = self._check_suite_json(base, sha, run["check_suite"]["id"], overall)
            self._queue(
                "check_suite", self._payload(action="completed", check_suite=suite, actor=BOT)
            )
            self._queue(
                "workflow_run",
                self._payload(
                    action="completed",
                    workflow=self._workflow_json(base),
                    workflow_run=self._workflow_run_json(base, sha, suite),
                    actor=BOT,
                ),
            )

    def _latest_statuses(self, sha: str) -> list[dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for status in self.commit_statuses.get(sha, []):
            latest[status["context"]] = status
        return list(latest.values())

    # --- JSON shapes ---------------------------------------------------------------------
    # ``base`` is the GitHub root as clients reach it (API and web pages alike, as on GitHub
    # Enterprise): every URL in an answer points back into the sandbox.

    def _api(self, base: str, path: str = "") -> str:
        return f"{base}/repos/{self.full_name}{path}"

    def _web(self, base: str, path: str = "") -> str:
        return f"{base}/{self.full_name}{path}"

    def repository(self, base: str) -> dict[str, Any]:
        """The full repository object (a superset of GitHub's minimal-repository)."""
        api, at = self._api(base), self.clock.iso(demo.EPOCH.timestamp())
        templated = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "contributors_url": "/contributors",
            "deployments_url": "/deployments",
            "downloads_url": "/downloads",
            "events_url": "/events",
            "forks_url": "/forks",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "hooks_url": "/hooks",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "languages_url": "/languages",
            "merges_url": "/merges",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "stargazers_url": "/stargazers",
            "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers",
            "subscription_url": "/subscription",
            "tags_url": "/tags",
            "teams_url": "/teams",
            "trees_url": "/git/trees{/sha}",
        }
        return {
            "id": REPO_ID,
            "node_id": node_id("R", REPO_ID),
            "name": self.repo,
            "full_name": self.full_name,
            "private": True,
            "owner": user(base, self.owner, kind="Organization"),
            "html_url": self._web(base),
            "description": "HotDash demo application",
            "fork": False,
            "url": api,
            **{key: api + suffix for key, suffix in templated.items()},
            "git_url": f"{self._web(base)}.git",
            "ssh_url": f"{self._web(base)}.git",
            "clone_url": f"{self._web(base)}.git",
            "svn_url": self._web(base),
            "mirror_url": None,
            "homepage": None,
            "language": "Python",
            "size": 1024,
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "open_issues": len([p for p in self.pulls.values() if p["state"] == "open"]),
            "open_issues_count": len([p for p in self.pulls.values() if p["state"] == "open"]),
            "default_branch": "main",
            "visibility": "private",
            "license": None,
            "topics": [],
            "is_template": False,
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "allow_forking": False,
            "web_commit_signoff_required": False,
            "created_at": at,
            "updated_at": at,
            "pushed_at": self.clock.iso(self.commits[self.branches["main"]]["date"]),
        }

    def _commit_json(self, base: str, sha: str) -> dict[str, Any]:
        commit = self.commits[sha]
        person = {
            "name": commit["author"],
            "email": f"{commit['author']}@example.com",
            "date": self.clock.iso(commit["date"]),
        }
        return {
            "sha": sha,
            "node_id": node_id("C", int(sha[:12], 16)),
            "url": self._api(base, f"/commits/{sha}"),
            "html_url": self._web(base, f"/commit/{sha}"),
            "comments_url": self._api(base, f"/commits/{sha}/comments"),
            "commit": {
                "url": self._api(base, f"/git/commits/{sha}"),
                "message": commit["message"],
                "author": person,
                "committer": person,
                "comment_count": 0,
                "tree": {
                    "sha": tree_sha(sha),
                    "url": self._api(base, f"/git/trees/{tree_sha(sha)}"),
                },
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": user(base, commit["author"]),
            "committer": user(base, commit["author"]),
            "parents": [
                {
                    "sha": p,
                    "url": self._api(base, f"/commits/{p}"),
                    "html_url": self._web(base, f"/commit/{p}"),
                }
                for p in commit["parents"]
            ],
        }

    def _asset_json(self, base: str, asset: dict[str, Any]) -> dict[str, Any]:
        data = asset["data"]
        return {
            "url": self._api(base, f"/releases/assets/{asset['id']}"),
            "id": asset["id"],
            "node_id": node_id("RA", asset["id"]),
            "name": asset["name"],
            "label": None,
            "state": "uploaded",
            "content_type": asset["content_type"],
            "size": len(data),
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "download_count": 0,
            "created_at": self.clock.iso(asset["at"]),
            "updated_at": self.clock.iso(asset["at"]),
            "uploader": user(base, "github-actions[bot]"),
            "browser_download_url": self._web(
                base, f"/releases/download/{asset['tag']}/{asset['name']}"
            ),
        }

    def _release_json(self, base: str, release: dict[str, Any]) -> dict[str, Any]:
        rid, tag = release["id"], release["tag"]
        return {
            "url": self._api(base, f"/releases/{rid}"),
            "html_url": self._web(base, f"/releases/tag/{tag}"),
            "assets_url": self._api(base, f"/releases/{rid}/assets"),
            "upload_url": self._api(base, f"/releases/{rid}/assets{{?name,label}}"),
            "tarball_url": self._api(base, f"/tarball/{tag}"),
            "zipball_url": self._api(base, f"/zipball/{tag}"),
            "id": rid,
            "node_id": node_id("RE", rid),
            "tag_name": tag,
            "target_commitish": "main",
            "name": tag,
            "body": release["body"],
            "draft": False,
            "prerelease": release["prerelease"],
            "immutable": False,
            "created_at": self.clock.iso(release["at"]),
            "published_at": self.clock.iso(release["at"]),
            "updated_at": self.clock.iso(release["at"]),
            "author": user(base, release["author"]),
            "assets": [self._asset_json(base, self.assets[a]) for a in release["assets"]],
        }

    def _pull_json(self, base: str, pull: dict[str, Any], *, full: bool = True) -> dict[str, Any]:
        """A pull request; ``full`` adds what only the single-PR answer (and webhooks) carry."""
        number = pull["number"]
        repo = self.repository(base)
        url = self._api(base, f"/pulls/{number}")
        issue = self._api(base, f"/issues/{number}")
        html = self._web(base, f"/pull/{number}")

        def side(ref: str, sha: str) -> dict[str, Any]:
            return {
                "label": f"{self.owner}:{ref}",
                "ref": ref,
                "sha": sha,
                "user": repo["owner"],
                "repo": repo,
            }

        links = {
            "self": url,
            "html": html,
            "issue": issue,
            "comments": f"{issue}/comments",
            "review_comments": f"{url}/comments",
            "review_comment": self._api(base, "/pulls/comments{/number}"),
            "commits": f"{url}/commits",
            "statuses": self._api(base, f"/statuses/{pull['head_sha']}"),
        }
        data = {
            "url": url,
            "id": 900000 + number,
            "node_id": node_id("PR", 900000 + number),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue,
            "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"],
            "comments_url": links["comments"],
            "statuses_url": links["statuses"],
            "number": number,
            "state": pull["state"],
            "locked": False,
            "title": pull["title"],
            "user": user(base, pull["author"]),
            "body": pull["body"] or None,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": self.clock.iso(pull["created_at"]),
            "updated_at": self.clock.iso(pull["updated_at"]),
            "closed_at": self.clock.iso(pull["closed_at"]) if pull["closed_at"] else None,
            "merged_at": self.clock.iso(pull["merged_at"]) if pull["merged_at"] else None,
            "merge_commit_sha": pull["merge_commit_sha"],
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": side(pull["branch"], pull["head_sha"]),
            "base": side("main", self.branches["main"]),
            "_links": {name: {"href": href} for name, href in links.items()},
            "author_association": "MEMBER",
            "auto_merge": None,
            "draft": pull["draft"],
        }
        if not full:
            return data
        merged = pull["merged_at"] is not None
        commits = len(self._ancestors(pull["head_sha"]) - self._ancestors(pull["base_sha"]))
        return {
            **data,
            "merged": merged,
            "mergeable": None if pull["state"] == "closed" else True,
            "rebaseable": None if pull["state"] == "closed" else True,
            "mergeable_state": "unknown" if pull["state"] == "closed" else "clean",
            "merged_by": user(base, pull["merged_by"]) if merged else None,
            "comments": len([c for c in self.comments.values() if c["number"] == number]),
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": commits,
            "additions": commits,
            "deletions": commits,
            "changed_files": 1 if commits else 0,
        }

    def _comment_json(self, base: str, comment: dict[str, Any]) -> dict[str, Any]:
        cid = comment["id"]
        return {
            "id": cid,
            "node_id": node_id("IC", cid),
            "url": self._api(base, f"/issues/comments/{cid}"),
            "html_url": self._web(base, f"/pull/{comment['number']}#issuecomment-{cid}"),
            "issue_url": self._api(base, f"/issues/{comment['number']}"),
            "body": comment["body"],
            "user": user(base, comment["author"]),
            "created_at": self.clock.iso(comment["created_at"]),
            "updated_at": self.clock.iso(comment["updated_at"]),
            "author_association": "NONE",
            "performed_via_github_app": None,
        }

    def _deployment_json(self, base: str, dep: dict[str, Any]) -> dict[str, Any]:
        url = self._api(base, f"/deployments/{dep['id']}")
        return {
            **{k: v for k, v in dep.items() if k not in ("at",)},
            "node_id": node_id("DE", dep["id"]),
            "url": url,
            "statuses_url": f"{url}/statuses",
            "repository_url": self._api(base),
            "creator": user(base, BOT),
            "created_at": self.clock.iso(dep["at"]),
            "updated_at": self.clock.iso(dep["at"]),
            "performed_via_github_app": None,
        }

    # --- pagination and errors -----------------------------------------------------------

    @staticmethod
    def page(req: Request, items: list[Any], wrap: str | None = None) -> Response:
        """One page of ``items`` with a GitHub-style ``link`` header (per_page ≤ 100)."""
        try:
            per_page = min(100, max(1, int(req.arg("per_page", "30") or 30)))
            number = max(1, int(req.arg("page", "1") or 1))
        except ValueError as exc:
            raise Problem(422, "per_page and page must be integers") from exc
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(number - 1) * per_page : number * per_page]

        def url(page: int) -> str:
            query = {k: v[0] for k, v in req.query.items()}
            query.update(page=str(page), per_page=str(per_page))
            return f"{req.base_url}{req.path}?{urlencode(query)}"

        links = []
        if number < last:
            links += [f'<{url(number + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if number > 1:
            links += [f'<{url(number - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
        headers = {"link": ", ".join(links)} if links else {}
        body = {"total_count": len(items), wrap: chunk} if wrap else chunk
        return Response(200, body, headers)

    def _check_repo(self, owner: str, repo: str) -> None:
        if (owner, repo) != (self.owner, self.repo):
            raise Problem(404, "Not Found")

    def rate_headers(self) -> dict[str, str]:
        self.requests_used += 1
        reset = (int(self.clock.now()) // 3600 + 1) * 3600
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(max(0, 5000 - self.requests_used)),
            "x-ratelimit-used": str(self.requests_used),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-resource": "core",
        }

    # --- routes --------------------------------------------------------------------------

    def _routes(self) -> Router:
        router = Router()
        repo = "/repos/{owner}/{repo}"
        for method, pattern, handler in (
            ("GET", repo + "/releases", self.list_releases),
            ("GET", repo + "/releases/tags/{tag}", self.release_by_tag),
            ("GET", repo + "/releases/{release_id:\\d+}", self.get_release),
            ("GET", repo + "/releases/{release_id:\\d+}/assets", self.list_assets),
            ("GET", repo + "/releases/assets/{asset_id:\\d+}", self.get_asset),
            ("GET", "/{owner}/{repo}/releases/download/{tag}/{name}", self.download),
            ("GET", repo + "/tags", self.list_tags),
            ("GET", repo + "/contents/{path:.+}", self.contents),
            ("GET", repo + "/compare/{basehead:.+}", self.compare),
            ("GET", repo + "/commits", self.list_commits),
            ("GET", repo + "/commits/{ref}", self.get_commit),
            ("GET", repo + "/commits/{ref}/check-runs", self.check_runs),
            ("GET", repo + "/commits/{ref}/status", self.combined_status),
            ("GET", repo + "/commits/{ref}/statuses", self.list_commit_statuses),
            ("POST", repo + "/statuses/{sha}", self.create_commit_status),
            ("GET", repo + "/deployments", self.list_deployments),
            ("POST", repo + "/deployments", self.create_deployment),
            ("GET", repo + "/deployments/{deployment_id:\\d+}", self.get_deployment),
            (
                "GET",
                repo + "/deployments/{deployment_id:\\d+}/statuses",
                self.list_deployment_statuses,
            ),
            (
                "POST",
                repo + "/deployments/{deployment_id:\\d+}/statuses",
                self.create_deployment_status,
            ),
            ("GET", repo + "/pulls", self.list_pulls),
            ("GET", repo + "/pulls/{number:\\d+}", self.get_pull),
            ("GET", repo + "/issues/{number:\\d+}/comments", self.list_comments),
            ("POST", repo + "/issues/{number:\\d+}/comments", self.create_comment),
            ("GET", repo + "/issues/comments/{comment_id:\\d+}", self.get_comment),
            ("PATCH", repo + "/issues/comments/{comment_id:\\d+}", self.update_comment),
            ("GET", repo, self.get_repository),
            ("GET", repo + "/branches/{branch}/protection", self.branch_protection),
            ("GET", repo + "/actions/secrets", self.list_actions_secrets),
            ("GET", repo + "/secret-scanning/alerts", self.list_secret_scanning_alerts),
        ):
            router.add(method, pattern, handler)
        return router

    def list_releases(self, req: Request, owner: str, repo: str) -> Response:
        self._check_repo(owner, repo)
        newest_first = sorted(self.releases, key=lambda r: (r["at"], r["id"]), reverse=True)
        return self.page(req, [self._release_json(req.base_url, r) for r in newest_first])

    def _find_release(self, **match: Any) -> dict[str, Any]:
        for release in self.releases:
            if all(release[k] == v for k, v in match.items()):
                return release
        raise Problem(404, "Not Found")

    def release_by_tag(self, req: Request, owner: str, repo: str, tag: str) -> Response:
        self._check_repo(owner, repo)
        return Response(200, self._release_json(req.base_url, self._find_release(tag=tag)))

    def get_release(self, req: Request, owner: str, repo: str, release_id: str) -> Response:
        self._check_repo(owner, repo)
        return Response(
            200, self._release_json(req.base_url, self._find_release(id=int(release_id)))
        )

    def list_assets(self, req: Request, owner: str, repo: str, release_id: str) -> Response:
        self._check_repo(owner, repo)
        release = self._find_release(id=int(release_id))
        return self.page(
            req, [self._asset_json(req.base_url, self.assets[a]) for a in release["assets"]]
        )

    def get_asset(self, req: Request, owner: str, repo: str, asset_id: str) -> Response:
        self._check_repo(owner, repo)
        asset = self.assets.get(int(asset_id))
        if asset is None:
            raise Problem(404, "Not Found")
        data = self._asset_json(req.base_url, asset)
        if req.headers.get("accept") == "application/octet-stream":
            return Response(302, headers={"location": data["browser_download_url"]})
        return Response(200, data)

    def download(self, req: Request, owner: str, repo: str, tag: str, name: str) -> Response:
        self._check_repo(owner, repo)
        for asset in self.assets.values():
            if asset["tag"] == tag and asset["name"] == name:
                return Response(200, raw=asset["data"], content_type="application/octet-stream")
        raise Problem(404, "Not Found")

    def list_tags(self, req: Request, owner: str, repo: str) -> Response:
        self._check_repo(owner, repo)
        tags = sorted(
            self.tags.items(), key=lambda item: self.commits[item[1]]["seq"], reverse=True
        )
        base = req.base_url
        return self.page(
            req,
            [
                {
                    "name": name,
                    "commit": {"sha": sha, "url": self._api(base, f"/commits/{sha}")},
                    "zipball_url": self._api(base, f"/zipball/refs/tags/{name}"),
                    "tarball_url": self._api(base, f"/tarball/refs/tags/{name}"),
                    "node_id": node_id("REF", self.commits[sha]["seq"]),
                }
                for name, sha in tags
            ],
        )

    def top_level_files(self) -> list[str]:
        """The names of the files at the repository's root (every ref has the same ones)."""
        names = {demo.VERSION_FILE, *demo.FLY_TOML_FILES, *self.file_overrides}
        return sorted(n for n in names if self.file_overrides.get(n, b"") is not None)

    def contents(self, req: Request, owner: str, repo: str, path: str) -> Response:
        self._check_repo(owner, repo)
        ref = req.arg("ref") or "main"
        sha = self._sha(ref)
        version = self.commits[sha]["version"]
        if path in self.file_overrides:
            data = self.file_overrides[path]
            if data is None:
                raise Problem(404, "Not Found")
        elif path == demo.VERSION_FILE:
            data = package_json(version)
        elif path in demo.FLY_TOML_FILES:
            data = demo.fly_toml(path, version).encode()
        else:
            raise Problem(404, "Not Found")
        encoded = base64.b64encode(data).decode()
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
        links = {
            "self": self._api(req.base_url, f"/contents/{path}?ref={ref}"),
            "git": self._api(req.base_url, f"/git/blobs/{blob}"),
            "html": self._web(req.base_url, f"/blob/{ref}/{path}"),
        }
        return Response(
            200,
            {
                "type": "file",
                "encoding": "base64",
                "size": len(data),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "content": "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
                + "\n",
                "sha": blob,
                "url": links["self"],
                "git_url": links["git"],
                "html_url": links["html"],
                "download_url": f"{req.base_url}/raw/{self.full_name}/{sha}/{path}",
                "_links": links,
            },
        )

    def compare(self, req: Request, owner: str, repo: str, basehead: str) -> Response:
        self._check_repo(owner, repo)
        base, sep, head = basehead.partition("...")
        if not sep:
            raise Problem(404, "Not Found")
        base_sha, head_sha = self._sha(base), self._sha(head)
        ahead_set, behind_set = self._ancestors(head_sha), self._ancestors(base_sha)
        ahead = sorted(ahead_set - behind_set, key=lambda s: self.commits[s]["seq"])
        behind = behind_set - ahead_set
        status = (
            "identical"
            if not ahead and not behind
            else "ahead"
            if not behind
            else "behind"
            if not ahead
            else "diverged"
        )
        page = self.page(req, [self._commit_json(req.base_url, s) for s in ahead])
        merge_base = max(ahead_set & behind_set, key=lambda s: self.commits[s]["seq"])
        html = self._web(req.base_url, f"/compare/{basehead}")
        file = {
            "sha": hashlib.sha1(head_sha.encode(), usedforsecurity=False).hexdigest(),
            "filename": demo.VERSION_FILE,
            "status": "modified",
            "additions": 1,
            "deletions": 1,
            "changes": 2,
            "blob_url": self._web(req.base_url, f"/blob/{head_sha}/{demo.VERSION_FILE}"),
            "raw_url": self._web(req.base_url, f"/raw/{head_sha}/{demo.VERSION_FILE}"),
            "contents_url": self._api(
                req.base_url, f"/contents/{demo.VERSION_FILE}?ref={head_sha}"
            ),
        }
        body = {
            "url": self._api(req.base_url, f"/compare/{basehead}"),
            "html_url": html,
            "permalink_url": self._web(
                req.base_url, f"/compare/{self.owner}:{base_sha[:7]}...{self.owner}:{head_sha[:7]}"
            ),
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "base_commit": self._commit_json(req.base_url, base_sha),
            "merge_base_commit": self._commit_json(req.base_url, merge_base),
            "commits": page.body,
            "files": [file] if ahead else [],
        }
        return Response(200, body, page.headers)

    def list_commits(self, req: Request, owner: str, repo: str) -> Response:
        self._check_repo(owner, repo)
        head = self._sha(req.arg("sha") or "main")
        history = sorted(self._ancestors(head), key=lambda s: self.commits[s]["seq"], reverse=True)
        return self.page(req, [self._commit_json(req.base_url, sha) for sha in history])

    def get_commit(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        self._check_repo(owner, repo)
        sha = self._sha(ref, 422)
        changed = self.commits[sha]["parents"] != []
        return Response(
            200,
            {
                **self._commit_json(req.base_url, sha),
                "stats": {"total": 2, "additions": 1, "deletions": 1} if changed else {},
                "files": [],
            },
        )

    def check_runs(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        self._check_repo(owner, repo)
        sha = self._sha(ref)
        runs = [
            self.check_run_json(req.base_url, sha, name, status, conclusion)
            for name, (status, conclusion) in sorted(self.check_runs_for(sha).items())
        ]
        return self.page(req, runs, wrap="check_runs")

    def check_run_json(
        self, base: str, sha: str, name: str, status: str, conclusion: str | None
    ) -> dict[str, Any]:
        run_id = int(
            hashlib.sha1(f"{sha}:{name}".encode(), usedforsecurity=False).hexdigest()[:8], 16
        )
        done = status == "completed"
        started = self.commits[sha]["date"] + 10
        return {
            "id": run_id,
            "node_id": node_id("CR", run_id),
            "name": name,
            "head_sha": sha,
            "external_id": "",
            "url": self._api(base, f"/check-runs/{run_id}"),
            "html_url": self._web(base, f"/runs/{run_id}"),
            "details_url": self._web(base, f"/actions/runs/{run_id // 2}/job/{run_id}"),
            "status": status,
            "conclusion": conclusion if done else None,
            "started_at": self.clock.iso(started),
            "completed_at": self.clock.iso(started + 190) if done else None,
            "output": {
                "title": name,
                "summary": conclusion or status,
                "text": None,
                "annotations_count": 0,
                "annotations_url": self._api(base, f"/check-runs/{run_id}/annotations"),
            },
            "check_suite": {"id": run_id // 2},
            "app": self.actions_app(base),
            "pull_requests": [],
        }

    def actions_app(self, base: str) -> dict[str, Any]:
        """The GitHub Actions app, which runs the checks."""
        at = self.clock.iso(demo.EPOCH.timestamp())
        return {
            "id": 15368,
            "slug": "github-actions",
            "node_id": node_id("A", 15368),
            "owner": user(base, "github", kind="Organization"),
            "name": "GitHub Actions",
            "description": "Automate your workflow from idea to production",
            "external_url": "https://docs.github.com/actions",
            "html_url": f"{base}/apps/github-actions",
            "created_at": at,
            "updated_at": at,
            "permissions": {"checks": "write", "contents": "write", "statuses": "write"},
            "events": ["check_run", "check_suite", "push", "pull_request", "workflow_run"],
        }

    def _head_commit(self, sha: str) -> dict[str, Any]:
        commit = self.commits[sha]
        person = {"name": commit["author"], "email": f"{commit['author']}@example.com"}
        return {
            "id": sha,
            "tree_id": tree_sha(sha),
            "message": commit["message"],
            "timestamp": self.clock.iso(commit["date"]),
            "author": person,
            "committer": person,
        }

    def _branch_of(self, sha: str) -> str | None:
        return next((name for name, head in self.branches.items() if head == sha), None)

    def _check_suite_json(self, base: str, sha: str, suite_id: int, conclusion: str) -> dict:
        at = self.clock.iso(self.commits[sha]["date"])
        parents = self.commits[sha]["parents"]
        return {
            "id": suite_id,
            "node_id": node_id("CS", suite_id),
            "head_branch": self._branch_of(sha),
            "head_sha": sha,
            "status": "completed",
            "conclusion": conclusion,
            "url": self._api(base, f"/check-suites/{suite_id}"),
            "before": parents[0] if parents else ZERO_SHA,
            "after": sha,
            "pull_requests": [],
            "app": self.actions_app(base),
            "created_at": at,
            "updated_at": self.clock.iso(),
            "rerequestable": True,
            "runs_rerequestable": True,
            "latest_check_runs_count": len(self.check_runs_for(sha)),
            "check_runs_url": self._api(base, f"/check-suites/{suite_id}/check-runs"),
            "head_commit": self._head_commit(sha),
        }

    def _workflow_json(self, base: str) -> dict[str, Any]:
        at = self.clock.iso(demo.EPOCH.timestamp())
        return {
            "id": WORKFLOW_ID,
            "node_id": node_id("W", WORKFLOW_ID),
            "name": "CI",
            "path": ".github/workflows/ci.yml",
            "state": "active",
            "created_at": at,
            "updated_at": at,
            "url": self._api(base, f"/actions/workflows/{WORKFLOW_ID}"),
            "html_url": self._web(base, "/blob/main/.github/workflows/ci.yml"),
            "badge_url": self._web(base, "/workflows/CI/badge.svg"),
        }

    def _workflow_run_json(self, base: str, sha: str, suite: dict[str, Any]) -> dict[str, Any]:
        run_id = suite["id"] * 3
        url = self._api(base, f"/actions/runs/{run_id}")
        repo = self.repository(base)
        author = self.commits[sha]["author"]
        return {
            "id": run_id,
            "node_id": node_id("WFR", run_id),
            "name": "CI",
            "path": ".github/workflows/ci.yml",
            "display_title": self.commits[sha]["message"].splitlines()[0],
            "run_number": self.commits[sha]["seq"] + 1,
            "run_attempt": 1,
            "event": "push",
            "status": "completed",
            "conclusion": suite["conclusion"],
            "workflow_id": WORKFLOW_ID,
            "check_suite_id": suite["id"],
            "check_suite_node_id": suite["node_id"],
            "check_suite_url": suite["url"],
            "head_branch": suite["head_branch"],
            "head_sha": sha,
            "head_commit": self._head_commit(sha),
            "head_repository": repo,
            "repository": repo,
            "actor": user(base, author),
            "triggering_actor": user(base, author),
            "pull_requests": [],
            "referenced_workflows": [],
            "created_at": suite["created_at"],
            "updated_at": suite["updated_at"],
            "run_started_at": suite["created_at"],
            "url": url,
            "html_url": self._web(base, f"/actions/runs/{run_id}"),
            "jobs_url": f"{url}/jobs",
            "logs_url": f"{url}/logs",
            "artifacts_url": f"{url}/artifacts",
            "cancel_url": f"{url}/cancel",
            "rerun_url": f"{url}/rerun",
            "previous_attempt_url": None,
            "workflow_url": self._api(base, f"/actions/workflows/{WORKFLOW_ID}"),
        }

    def _status_json(self, base: str, sha: str, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self._api(base, f"/statuses/{sha}"),
            "avatar_url": user(base, BOT)["avatar_url"],
            "id": status["id"],
            "node_id": node_id("SC", status["id"]),
            "state": status["state"],
            "description": status["description"],
            "target_url": status["target_url"],
            "context": status["context"],
            "created_at": self.clock.iso(status["at"]),
            "updated_at": self.clock.iso(status["at"]),
            "creator": user(base, BOT),
        }

    def combined_status(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        self._check_repo(owner, repo)
        sha = self._sha(ref)
        statuses = self._latest_statuses(sha)
        states = {s["state"] for s in statuses}
        if states & {"error", "failure"}:
            state = "failure"
        elif not statuses or "pending" in states:
            state = "pending"
        else:
            state = "success"
        return Response(
            200,
            {
                "state": state,
                "statuses": [self._status_json(req.base_url, sha, s) for s in statuses],
                "sha": sha,
                "total_count": len(statuses),
                "repository": self.repository(req.base_url),
                "commit_url": self._api(req.base_url, f"/commits/{sha}"),
                "url": self._api(req.base_url, f"/commits/{sha}/status"),
            },
        )

    def list_commit_statuses(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        self._check_repo(owner, repo)
        sha = self._sha(ref)
        newest_first = reversed(self.commit_statuses.get(sha, []))
        return self.page(req, [self._status_json(req.base_url, sha, s) for s in newest_first])

    def create_commit_status(self, req: Request, owner: str, repo: str, sha: str) -> Response:
        self._check_repo(owner, repo)
        full = self._sha(sha, 422)
        body = req.json()
        if body.get("state") not in ("error", "failure", "pending", "success"):
            raise Problem(422, "Validation Failed", errors=[invalid("Status", "state")])
        status = {
            "id": self._next("status", 1),
            "state": body["state"],
            "context": body.get("context") or "default",
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "at": self.clock.now(),
        }
        self.commit_statuses.setdefault(full, []).append(status)
        return Response(201, self._status_json(req.base_url, full, status))

    # --- deployments ---------------------------------------------------------------------

    def list_deployments(self, req: Request, owner: str, repo: str) -> Response:
        self._check_repo(owner, repo)
        filters = {k: req.arg(k) for k in ("sha", "ref", "task", "environment") if req.arg(k)}
        items = [
            self._deployment_json(req.base_url, d)
            for d in sorted(self.deployments.values(), key=lambda d: d["id"], reverse=True)
            if all(d[k] == v for k, v in filters.items())
        ]
        return self.page(req, items)

    def _contexts_green(self, sha: str, required: list[str] | None) -> bool:
        states = {name: conclusion for name, (_, conclusion) in self.check_runs_for(sha).items()}
        states.update({s["context"]: s["state"] for s in self._latest_statuses(sha)})
        wanted = list(states) if required is None else required
        return all(states.get(name) == "success" for name in wanted)

    def create_deployment(self, req: Request, owner: str, repo: str) -> Response:
        self._check_repo(owner, repo)
        body = req.json()
        ref = body.get("ref")
        if not ref:
            raise Problem(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        sha = self._sha(ref, 422)
        forced = self.next_deployment_responses.pop(0) if self.next_deployment_responses else None
        if forced == 202:
            return Response(202, {"message": f"Auto-merged main into {ref} on deployment."})
        if forced == 409 or not self._contexts_green(sha, body.get("required_contexts")):
            raise Problem(409, f"Conflict: Commit status checks failed for {ref}.")
        environment = body.get("environment") or "production"
        deployment = {
            "id": self._next("deployment", 7000),
            "sha": sha,
            "ref": ref,
            "task": body.get("task") or "deploy",
            "payload": body.get("payload") or {},
            "original_environment": environment,
            "environment": environment,
            "description": body.get("description"),
            "transient_environment": bool(body.get("transient_environment")),
            "production_environment": body.get(
                "production_environment", environment == "production"
            ),
            "at": self.clock.now(),
        }
        self.deployments[deployment["id"]] = deployment
        return Response(201, self._deployment_json(req.base_url, deployment))

    def _deployment(self, deployment_id: str) -> dict[str, Any]:
        deployment = self.deployments.get(int(deployment_id))
        if deployment is None:
            raise Problem(404, "Not Found")
        return deployment

    def get_deployment(self, req: Request, owner: str, repo: str, deployment_id: str) -> Response:
        self._check_repo(owner, repo)
        return Response(200, self._deployment_json(req.base_url, self._deployment(deployment_id)))

    def list_deployment_statuses(
        self, req: Request, owner: str, repo: str, deployment_id: str
    ) -> Response:
        self._check_repo(owner, repo)
        self._deployment(deployment_id)
        return self.page(req, list(reversed(self.deployment_statuses.get(int(deployment_id), []))))

    def _add_deployment_status(
        self, req: Request, deployment: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        status_id = self._next("deployment_status", 8000)
        log_url = body.get("log_url") or body.get("target_url") or ""
        deployment_url = self._api(req.base_url, f"/deployments/{deployment['id']}")
        status = {
            "url": f"{deployment_url}/statuses/{status_id}",
            "id": status_id,
            "node_id": node_id("DES", status_id),
            "state": body["state"],
            "description": body.get("description") or "",
            "environment": body.get("environment") or deployment["environment"],
            "environment_url": body.get("environment_url") or "",
            "log_url": log_url,
            "target_url": log_url,
            "creator": user(req.base_url, BOT),
            "created_at": self.clock.iso(),
            "updated_at": self.clock.iso(),
            "deployment_url": deployment_url,
            "repository_url": self._api(req.base_url),
            "performed_via_github_app": None,
        }
        self.deployment_statuses.setdefault(deployment["id"], []).append(status)
        return status

    def create_deployment_status(
        self, req: Request, owner: str, repo: str, deployment_id: str
    ) -> Response:
        self._check_repo(owner, repo)
        deployment = self._deployment(deployment_id)
        body = req.json()
        if body.get("state") not in DEPLOYMENT_STATES:
            raise Problem(422, "Validation Failed", errors=[invalid("DeploymentStatus", "state")])
        status = self._add_deployment_status(req, deployment, body)
        if body["state"] == "success" and body.get("auto_inactive", True):
            for other in self.deployments.values():
                earlier = self.deployment_statuses.get(other["id"], [])
                if (
                    other["id"] != deployment["id"]
                    and other["environment"] == deployment["environment"]
                    and not other["transient_environment"]
                    and not other["production_environment"]
                    and earlier
                    and earlier[-1]["state"] == "success"
                ):
                    self._add_deployment_status(req, other, {"state": "inactive"})
        return Response(201, status, {"location": status["url"]})

    # --- pull requests and comments ------------------------------------------------------

    def _pull(self, number: str | int) -> dict[str, Any]:
        pull = self.pulls.get(int(number))
        if pull is None:
            raise Problem(404, "Not Found")
        return pull

    def list_pulls(self, req: Request, owner: str, repo: str) -> Response:
        self._check_repo(owner, repo)
        state = req.arg("state", "open")
        head, base = req.arg("head"), req.arg("base")
        items = [
            self._pull_json(req.base_url, p, full=False)
            for p in sorted(self.pulls.values(), key=lambda p: p["number"], reverse=True)
            if state in ("all", p["state"])
            and (head is None or head == f"{self.owner}:{p['branch']}")
            and (base is None or base == "main")
        ]
        return self.page(req, items)

    def get_pull(self, req: Request, owner: str, repo: str, number: str) -> Response:
        self._check_repo(owner, repo)
        return Response(200, self._pull_json(req.base_url, self._pull(number)))

    def list_comments(self, req: Request, owner: str, repo: str, number: str) -> Response:
        self._check_repo(owner, repo)
        self._pull(number)
        items = [
            self._comment_json(req.base_url, c)
            for c in sorted(self.comments.values(), key=lambda c: c["id"])
            if c["number"] == int(number)
        ]
        return self.page(req, items)

    def create_comment(self, req: Request, owner: str, repo: str, number: str) -> Response:
        self._check_repo(owner, repo)
        self._pull(number)
        body = req.json().get("body")
        if not body:
            raise Problem(
                422, "Validation Failed", errors=[invalid("IssueComment", "body", "missing_field")]
            )
        now = self.clock.now()
        comment = {
            "id": self._next("comment", 3000),
            "number": int(number),
            "body": body,
            "author": BOT,
            "created_at": now,
            "updated_at": now,
        }
        self.comments[comment["id"]] = comment
        data = self._comment_json(req.base_url, comment)
        return Response(201, data, {"location": data["url"]})

    def _comment(self, comment_id: str) -> dict[str, Any]:
        comment = self.comments.get(int(comment_id))
        if comment is None:
            raise Problem(404, "Not Found")
        return comment

    def get_comment(self, req: Request, owner: str, repo: str, comment_id: str) -> Response:
        self._check_repo(owner, repo)
        return Response(200, self._comment_json(req.base_url, self._comment(comment_id)))

    def update_comment(self, req: Request, owner: str, repo: str, comment_id: str) -> Response:
        self._check_repo(owner, repo)
        comment = self._comment(comment_id)
        body = req.json().get("body")
        if not body:
            raise Problem(
                422, "Validation Failed", errors=[invalid("IssueComment", "body", "missing_field")]
            )
        comment.update(body=body, updated_at=self.clock.now())
        return Response(200, self._comment_json(req.base_url, comment))

    def get_repository(self, req: Request, owner: str, repo: str) -> Response:
        self._check_repo(owner, repo)
        features = {
            "advanced_security": "enabled",
            "dependabot_security_updates": "enabled",
            "secret_scanning_non_provider_patterns": "disabled",
            "secret_scanning_ai_detection": "disabled",
            **self.security,
        }
        return Response(
            200,
            {
                **self.repository(req.base_url),
                "network_count": 0,
                "subscribers_count": 0,
                "security_and_analysis": {
                    name: {"status": status} for name, status in features.items()
                },
            },
        )

    def branch_protection(self, req: Request, owner: str, repo: str, branch: str) -> Response:
        self._check_repo(owner, repo)
        if branch not in self.branches:
            raise Problem(404, "Branch not found")
        rules = self.protection
        if branch != "main" or rules is None:
            raise Problem(404, "Branch not protected")
        url = self._api(req.base_url, "/branches/main/protection")

        def flag(name: str) -> dict[str, bool]:
            return {"enabled": bool(rules[name])}

        return Response(
            200,
            {
                "url": url,
                "required_status_checks": {
                    "url": f"{url}/required_status_checks",
                    "strict": rules["strict"],
                    "contexts": list(rules["required_checks"]),
                    "contexts_url": f"{url}/required_status_checks/contexts",
                    "checks": [
                        {"context": name, "app_id": 15368} for name in rules["required_checks"]
                    ],
                },
                "required_pull_request_reviews": {
                    "url": f"{url}/required_pull_request_reviews",
                    "dismiss_stale_reviews": rules["dismiss_stale_reviews"],
                    "require_code_owner_reviews": rules["require_code_owner_reviews"],
                    "required_approving_review_count": rules["required_approving_review_count"],
                    "require_last_push_approval": False,
                },
                "required_signatures": {"url": f"{url}/required_signatures", "enabled": False},
                "enforce_admins": {"url": f"{url}/enforce_admins", **flag("enforce_admins")},
                "required_linear_history": flag("required_linear_history"),
                "allow_force_pushes": flag("allow_force_pushes"),
                "allow_deletions": flag("allow_deletions"),
                "block_creations": {"enabled": False},
                "required_conversation_resolution": flag("required_conversation_resolution"),
                "lock_branch": {"enabled": False},
                "allow_fork_syncing": {"enabled": False},
            },
        )

    def list_actions_secrets(self, req: Request, owner: str, repo: str) -> Response:
        self._check_repo(owner, repo)
        items = [
            {
                "name": name,
                "created_at": self.clock.iso(times["created_at"]),
                "updated_at": self.clock.iso(times["updated_at"]),
            }
            for name, times in sorted(self.actions_secrets.items())
        ]
        return self.page(req, items, wrap="secrets")

    def _alert_json(self, base: str, alert: dict[str, Any], *, hide: bool) -> dict[str, Any]:
        number = alert["number"]
        url = self._api(base, f"/secret-scanning/alerts/{number}")
        resolved = alert["state"] == "resolved"
        data = {
            "number": number,
            "created_at": self.clock.iso(alert["created_at"]),
            "updated_at": self.clock.iso(alert["updated_at"]),
            "url": url,
            "html_url": self._web(base, f"/security/secret-scanning/{number}"),
            "locations_url": f"{url}/locations",
            "state": alert["state"],
            "resolution": alert["resolution"],
            "resolved_at": self.clock.iso(alert["updated_at"]) if resolved else None,
            "resolved_by": user(base, "bob") if resolved else None,
            "resolution_comment": None,
            "secret_type": alert["secret_type"],
            "secret_type_display_name": alert["display_name"],
            "provider": alert["provider"],
            "provider_slug": alert["provider"].lower(),
            "validity": "unknown",
            "publicly_leaked": False,
            "multi_repo": False,
            "is_base64_encoded": False,
            "has_more_locations": False,
            "push_protection_bypassed": False,
            "push_protection_bypassed_by": None,
            "push_protection_bypassed_at": None,
            "assigned_to": None,
        }
        if not hide:  # GitHub answers the secret itself unless asked not to
            data["secret"] = alert["secret"]
        return data

    def list_secret_scanning_alerts(self, req: Request, owner: str, repo: str) -> Response:
        self._check_repo(owner, repo)
        if self.security["secret_scanning"] != "enabled":
            raise Problem(404, "Secret scanning is disabled on this repository.")
        state = req.arg("state")
        sort = "updated_at" if req.arg("sort") == "updated" else "created_at"
        alerts = sorted(
            (a for a in self.secret_scanning_alerts if state in (None, a["state"])),
            key=lambda a: (a[sort], a["number"]),
            reverse=req.arg("direction", "desc") != "asc",
        )
        hide = req.arg("hide_secret") == "true"
        return self.page(req, [self._alert_json(req.base_url, a, hide=hide) for a in alerts])

    # --- repository settings (the control API and tests change them) --------------------

    def change_protection(self, **changes: Any) -> dict[str, Any] | None:
        """Change the default branch's protection: any of PROTECTION_SETTINGS, ``add_check``
        or ``remove_check`` (a required check's name), ``protected`` false to remove it all
        (true puts the demo's back)."""
        if "protected" in changes:
            self.protection = default_protection() if changes.pop("protected") else None
        unknown = set(changes) - {*PROTECTION_SETTINGS, "add_check", "remove_check"}
        if unknown:
            raise ValueError(f"unknown protection settings: {', '.join(sorted(unknown))}")
        if changes and self.protection is None:
            raise ValueError("the branch is not protected")
        if changes:
            removed, added = changes.pop("remove_check", None), changes.pop("add_check", None)
            checks = [name for name in self.protection["required_checks"] if name != removed]
            self.protection["required_checks"] = checks + ([added] if added else [])
            self.protection.update(changes)
        return self.protection

    def set_security(self, **features: bool) -> dict[str, str]:
        """Turn secret scanning or its push protection on (true) or off (false)."""
        unknown = set(features) - set(SECURITY_FEATURES)
        if unknown:
            raise ValueError(f"unknown security features: {', '.join(sorted(unknown))}")
        for name, enabled in features.items():
            self.security[name] = "enabled" if enabled else "disabled"
        return dict(self.security)

    def add_secret_scanning_alert(
        self,
        secret: str,
        *,
        secret_type: str = "fly_api_token",
        display_name: str = "Fly.io API Token",
        provider: str = "Fly.io",
    ) -> dict[str, Any]:
        """Secret scanning found ``secret`` in the repository: a new open alert."""
        now = self.clock.now()
        alert = {
            "number": self._next("secret_scanning_alert", 1),
            "state": "open",
            "resolution": None,
            "secret": secret,
            "secret_type": secret_type,
            "display_name": display_name,
            "provider": provider,
            "created_at": now,
            "updated_at": now,
        }
        self.secret_scanning_alerts.append(alert)
        return {k: v for k, v in alert.items() if k != "secret"}

    def resolve_secret_scanning_alert(self, number: int, resolution: str = "revoked") -> None:
        alert = next((a for a in self.secret_scanning_alerts if a["number"] == number), None)
        if alert is None:
            raise Problem(404, f"no secret-scanning alert #{number}")
        alert.update(state="resolved", resolution=resolution, updated_at=self.clock.now())

    def age_actions_secret(self, name: str, days: float) -> None:
        """Make Actions secret ``name`` last updated ``days`` ago (created if missing)."""
        at = self.clock.now() - days * DAY
        times = self.actions_secrets.setdefault(name, {"created_at": at, "updated_at": at})
        times["created_at"] = min(times["created_at"], at)
        times["updated_at"] = at

    # --- simulated activity (the control API and tests call these) -----------------------

    def _payload(self, *, actor: str, **fields: Any) -> dict[str, Any]:
        return {
            **fields,
            "repository": self.repository(self.api_url),
            "sender": user(self.api_url, actor),
        }

    def _queue(self, event: str, payload: dict[str, Any]) -> None:
        self.outbox.append((event, payload))

    def _push_commit(self, sha: str) -> dict[str, Any]:
        commit = self.commits[sha]
        person = {
            "name": commit["author"],
            "email": f"{commit['author']}@example.com",
            "username": commit["author"],
        }
        return {
            "id": sha,
            "tree_id": tree_sha(sha),
            "distinct": True,
            "message": commit["message"],
            "timestamp": self.clock.iso(commit["date"]),
            "url": self._web(self.api_url, f"/commit/{sha}"),
            "author": person,
            "committer": person,
            "added": [],
            "removed": [],
            "modified": [demo.VERSION_FILE],
        }

    def _push(self, ref: str, before: str, after: str, commits: list[str], actor: str) -> None:
        self._queue(
            "push",
            self._payload(
                ref=ref,
                before=before,
                after=after,
                created=before == ZERO_SHA,
                deleted=False,
                forced=False,
                base_ref=None,
                compare=self._web(self.api_url, f"/compare/{before[:12]}...{after[:12]}"),
                commits=[self._push_commit(sha) for sha in commits],
                head_commit=self._push_commit(after),
                pusher={"name": actor, "email": f"{actor}@example.com"},
                actor=actor,
            ),
        )

    def open_pull(
        self,
        title: str,
        branch: str,
        *,
        author: str = "alice",
        body: str = "",
        commits: list[str] | None = None,
        version: str | None = None,
        draft: bool = False,
    ) -> dict[str, Any]:
        """Open a PR from a new branch off main with one commit per message."""
        if branch in self.branches:
            raise Problem(422, f"branch {branch} already exists")
        now = self.clock.now()
        base = self.branches["main"]
        version = version or self.commits[base]["version"]
        head = base
        for offset, message in enumerate(commits or [title]):
            head = self._commit(message, author, [head], version, now + offset)
        self.branches[branch] = head
        number = self._next("pull", 18)  # the demo history used #1-#17
        pull = {
            "number": number,
            "title": title,
            "body": body,
            "author": author,
            "branch": branch,
            "state": "open",
            "draft": draft,
            "head_sha": head,
            "base_sha": base,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "merged_at": None,
            "merged_by": None,
            "merge_commit_sha": None,
        }
        self.pulls[number] = pull
        self._queue(
            "pull_request",
            self._payload(
                action="opened",
                number=number,
                pull_request=self._pull_json(self.api_url, pull),
                actor=author,
            ),
        )
        return pull

    def push_to_pull(
        self, number: int, message: str = "fix: address review", *, version: str | None = None
    ) -> dict[str, Any]:
        """Add a commit to a PR's branch (a ``synchronize`` event)."""
        pull = self._pull(number)
        if pull["state"] != "open":
            raise Problem(422, f"pull request #{number} is closed")
        before = pull["head_sha"]
        now = self.clock.now()
        after = self._commit(
            message, pull["author"], [before], version or self.commits[before]["version"], now
        )
        pull.update(head_sha=after, updated_at=now)
        self.branches[pull["branch"]] = after
        self._queue(
            "pull_request",
            self._payload(
                action="synchronize",
                number=number,
                before=before,
                after=after,
                pull_request=self._pull_json(self.api_url, pull),
                actor=pull["author"],
            ),
        )
        return pull

    def close_pull(self, number: int, *, merge: bool = False, actor: str = "bob") -> dict[str, Any]:
        """Close a PR, merging it into main first when ``merge``."""
        pull = self._pull(number)
        if pull["state"] != "open":
            raise Problem(422, f"pull request #{number} is already closed")
        now = self.clock.now()
        if merge:
            main = self.branches["main"]
            source = f"{self.owner}/{pull['branch']}"
            message = f"Merge pull request #{number} from {source}\n\n{pull['title']}"
            merged = self._commit(
                message,
                actor,
                [main, pull["head_sha"]],
                self.commits[pull["head_sha"]]["version"],
                now,
            )
            self.branches["main"] = merged
            pull.update(merged_at=now, merge_commit_sha=merged, merged_by=actor)
        pull.update(state="closed", closed_at=now, updated_at=now)
        self._queue(
            "pull_request",
            self._payload(
                action="closed",
                number=number,
                pull_request=self._pull_json(self.api_url, pull),
                actor=actor,
            ),
        )
        if merge:
            self._push(
                "refs/heads/main", main, pull["merge_commit_sha"], [pull["merge_commit_sha"]], actor
            )
        return pull

    def publish_release(
        self,
        version: str,
        *,
        prerelease: bool = False,
        commits: list[str] | None = None,
        healthy: bool = True,
        author: str = "alice",
        image_in_notes: bool = True,
    ) -> dict[str, Any]:
        """CI's work for a new version: commits on main, tag, release with artifact and
        checksum assets, and an image in the Fly registry (labelled broken unless ``healthy``),
        named in the release notes unless ``image_in_notes`` is false."""
        tag = f"v{version}"
        if tag in self.tags:
            raise Problem(422, f"Validation Failed: tag_name {tag} already_exists")
        now = self.clock.now()
        before = self.branches["main"]
        head = before
        shas = []
        for offset, message in enumerate(commits or [f"feat: release {version}"]):
            head = self._commit(message, author, [head], version, now - 60 + offset)
            shas.append(head)
        self.branches["main"] = head
        release = demo.DemoRelease(
            version=version,
            prerelease=prerelease,
            published_at=datetime.fromtimestamp(now, tz=UTC),
            commits=tuple(
                demo.DemoCommit(sha=s, message=self.commits[s]["message"], author=author)
                for s in shas
            ),
        )
        labels = {"org.opencontainers.image.version": version}
        if not healthy:
            labels[demo.BROKEN_IMAGE_LABEL] = "fail"
        self.register_image(release.image_ref, digest=release.image_digest, labels=labels)
        record = self._release(release, now, "github-actions[bot]", image_in_notes=image_in_notes)
        self._push("refs/heads/main", before, head, shas, author)
        self._queue(
            "release",
            self._payload(
                action="published",
                release=self._release_json(self.api_url, record),
                actor="github-actions[bot]",
            ),
        )
        return record

    def deliver_outbox(self) -> list[dict[str, Any]]:
        """Send queued webhook events (call without holding the world lock)."""
        sent = []
        while self.outbox:
            event, payload = self.outbox.pop(0)
            sent.append(self._deliver(event, payload))
        return sent

    def _deliver(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/sandbox",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "X-GitHub-Hook-ID": "1",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(REPO_ID),
        }
        if self.webhook.secret:
            headers["X-Hub-Signature-256"] = sign(self.webhook.secret, body)
        status: int | None = None
        if self.webhook.sink is not None:
            status = self.webhook.sink(headers, body)
        elif self.webhook.url:
            request = urllib.request.Request(
                self.webhook.url, data=body, headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
        delivery = {
            "id": headers["X-GitHub-Delivery"],
            "event": event,
            "action": payload.get("action"),
            "status": status,
            "headers": headers,
            "body": body.decode(),
        }
        self.webhook.deliveries.append(delivery)
        return delivery

    def summary(self) -> dict[str, Any]:
        return {
            "main": self.branches["main"],
            "releases": [r["tag"] for r in self.releases],
            "pulls": {
                n: {"state": p["state"], "head": p["head_sha"], "branch": p["branch"]}
                for n, p in self.pulls.items()
            },
            "deployments": len(self.deployments),
        }
