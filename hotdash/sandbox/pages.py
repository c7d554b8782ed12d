"""Read-only HTML pages standing in for github.com and a Fly app's fly.dev address, so every
link HotDash shows in sandbox mode leads somewhere (``hotdash.links.outside_url`` points them
here). GitHub's pages sit at the root, as on github.com: ``/{owner}/{repo}/pull/{n}``,
``/releases``, ``/releases/tag/{tag}``, ``/compare/{base}...{head}``, ``/commit/{sha}``,
``/settings/branches``; a Fly app's page is ``/fly-apps/{app}``. Something the world does not
hold is a 404, as it would be upstream."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from .web import Problem, Response, Router
from .world import World

FLY_APP_PAGES = "/fly-apps/"
GITHUB_PAGES = re.compile(r"^/[^/]+/[^/]+/(pull|commit|compare|releases|settings)(/|$)")


def is_page(path: str) -> bool:
    return path.startswith(FLY_APP_PAGES) or bool(GITHUB_PAGES.match(path))


def _html(title: str, *sections: str) -> Response:
    body = "".join(sections)
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · sandbox</title></head><body>"
        "<p><em>Sandbox: a read-only stand-in for the real page.</em></p>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Response(200, raw=page.encode(), content_type="text/html; charset=utf-8")


def _facts(rows: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in rows)
    return f"<dl>{items}</dl>"


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


class Pages:
    def __init__(self, world: World) -> None:
        self.world = world
        self.router = Router()
        for pattern, handler in (
            ("/fly-apps/{app}", self.fly_app),
            ("/{owner}/{repo}/pull/{number:[0-9]+}", self.pull),
            ("/{owner}/{repo}/commit/{sha:[0-9a-f]+}", self.commit),
            ("/{owner}/{repo}/compare/{basehead:.+}", self.compare),
            ("/{owner}/{repo}/releases", self.releases),
            ("/{owner}/{repo}/releases/tag/{tag:.+}", self.release),
            ("/{owner}/{repo}/settings/branches", self.branches),
        ):
            self.router.add("GET", pattern, handler)

    def serve(self, method: str, path: str) -> Response:
        with self.world.lock:
            try:
                handler, params = self.router.resolve(method, path)
                return handler(**params)
            except Problem as problem:
                return Response(problem.status, {"error": problem.message})

    def _repo(self, owner: str, repo: str) -> Any:
        github = self.world.github
        if f"{owner}/{repo}" != github.full_name:
            raise Problem(404, f"no repository {owner}/{repo} in the sandbox")
        return github

    def _commit_line(self, sha: str) -> str:
        commit = self.world.github.commits[sha]
        return f"{sha[:7]} {commit['message'].splitlines()[0]} ({commit['author']})"

    def pull(self, owner: str, repo: str, number: str) -> Response:
        github = self._repo(owner, repo)
        pull = github.pulls.get(int(number))
        comments = [c["body"] for c in github.comments.values() if c["number"] == int(number)]
        if pull is not None:
            facts = [
                ("State", pull["state"]),
                ("Author", pull["author"]),
                ("Branch", pull["branch"]),
                ("Head commit", pull["head_sha"]),
            ]
            title = f"Pull request #{number}: {pull['title']}"
        else:  # a pull request of the demo's history: merged, known by its merge commit
            marker = f"(#{number})"
            merged = [s for s, c in github.commits.items() if marker in c["message"]]
            if not merged:
                raise Problem(404, f"no pull request #{number} in the sandbox")
            facts = [("State", "merged"), ("Merge commit", self._commit_line(merged[0]))]
            title = f"Pull request #{number}"
        sections = [_facts(facts)]
        for body in comments:
            sections.append(f"<h2>Comment</h2><pre>{escape(body)}</pre>")
        return _html(title, *sections)

    def commit(self, owner: str, repo: str, sha: str) -> Response:
        github = self._repo(owner, repo)
        full = github.resolve(sha)
        if full is None or full not in github.commits:
            raise Problem(404, f"no commit {sha} in the sandbox")
        commit = github.commits[full]
        facts = [("Author", commit["author"]), ("Version", commit["version"])]
        return _html(f"Commit {full[:7]}", _facts(facts), f"<pre>{escape(commit['message'])}</pre>")

    def compare(self, owner: str, repo: str, basehead: str) -> Response:
        github = self._repo(owner, repo)
        base, sep, head = basehead.partition("...")
        base_sha, head_sha = github.resolve(base), github.resolve(head)
        if not sep or base_sha is None or head_sha is None:
            raise Problem(404, f"cannot compare {basehead} in the sandbox")
        ahead = github._ancestors(head_sha) - github._ancestors(base_sha)
        ordered = sorted(ahead, key=lambda s: github.commits[s]["seq"])
        return _html(f"Comparing {base}…{head}", _list([self._commit_line(s) for s in ordered]))

    def releases(self, owner: str, repo: str) -> Response:
        github = self._repo(owner, repo)
        tags = [release["tag"] for release in reversed(github.releases)]
        return _html(f"Releases of {github.full_name}", _list(tags))

    def release(self, owner: str, repo: str, tag: str) -> Response:
        github = self._repo(owner, repo)
        found = [release for release in github.releases if release["tag"] == tag]
        if not found:
            raise Problem(404, f"no release {tag} in the sandbox")
        release = found[0]
        facts = [("Author", release["author"]), ("Pre-release", release["prerelease"])]
        return _html(f"Release {tag}", _facts(facts), f"<pre>{escape(release['body'])}</pre>")

    def branches(self, owner: str, repo: str) -> Response:
        github = self._repo(owner, repo)
        protected = "protected" if github.protection else "not protected"
        return _html(f"Branches of {github.full_name}", _facts([("main", protected)]))

    def fly_app(self, app: str) -> Response:
        fly = self.world.fly
        if app not in fly.apps:
            raise Problem(404, f"no Fly app {app} in the sandbox")
        now = self.world.clock.now()
        machines = [
            f"{m.id} {m.name} {m.region}: {m.state(now)}, {m.config.get('image', '')}"
            for m in fly.machines.values()
            if m.app == app
        ]
        facts = [("Status", fly.apps[app]["status"]), ("Machines", len(machines))]
        return _html(f"Fly app {app}", _facts(facts), _list(machines))
