"""CI checks: the verdict GitHub's commit statuses and check runs give a commit."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from hotdash.integrations import github_client

OK_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})


@dataclass(frozen=True)
class CheckResult:
    name: str
    state: str  # success / failure / pending / missing / a check-run conclusion
    ok: bool
    url: str = ""
    required: bool = True


@dataclass(frozen=True)
class ChecksVerdict:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def failing(self) -> list[CheckResult]:
        """Required checks that are not green: these block a deploy."""
        return [result for result in self.results if result.required and not result.ok]

    @property
    def warnings(self) -> list[CheckResult]:
        """Optional checks that are not green: shown, never blocking."""
        return [result for result in self.results if not result.required and not result.ok]

    @property
    def green(self) -> bool:
        return not self.failing


def ci_checks_evaluate(*, app: Any, commit_sha: str) -> ChecksVerdict:
    """The CI verdict for a commit. A check is required when ``app.required_checks`` names it
    (a required one that never reported is ``missing``); when the app names none, every check
    is required. Only required checks that are not green block; the others are warnings.
    Raises APIError when GitHub fails."""
    with github_client(app.github_owner, app.github_repo) as github:
        combined = github.combined_status(commit_sha)
        runs = github.check_runs(commit_sha)
    results = [
        CheckResult(name=s.context, state=s.state, ok=s.state == "success", url=s.target_url)
        for s in combined.statuses
    ]
    # The combined state also covers statuses older than the latest per context.
    if (
        combined.total_count
        and combined.state in ("failure", "pending")
        and all(r.ok for r in results)
    ):
        results.append(CheckResult(name="combined status", state=combined.state, ok=False))
    results += [
        CheckResult(
            name=run.name,
            state=run.conclusion or run.status,
            ok=run.status == "completed" and run.conclusion in OK_CONCLUSIONS,
            url=run.html_url,
        )
        for run in runs
    ]
    named = set(app.required_checks)
    if named:
        results = [replace(result, required=result.name in named) for result in results]
    present = {result.name for result in results}
    results += [
        CheckResult(name=name, state="missing", ok=False)
        for name in app.required_checks
        if name not in present
    ]
    return ChecksVerdict(results=results)
