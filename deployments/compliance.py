"""The compliance sweep's rules as plain code: each check's verdict from facts already read,
secret rotation arithmetic, and the gap report. No database, no HTTP.

A verdict is PASS, WARN or FAIL with a one-line reason and the details behind it. Secrets are
known by name, place, date and (Fly) digest only: no function here ever sees a value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deployments.engine.desired import declared_config
from deployments.rollout import health_deadline_seconds

PASS, WARN, FAIL = "pass", "warn", "fail"
LABELS = {PASS: "PASS", WARN: "WARN", FAIL: "FAIL"}
# Every check, in report order.
CHECKS = {
    "branch_protection": "Branch protection",
    "recent_ci": "Recent CI on the default branch",
    "repository_security": "Repository security",
    "secrets_inventory": "Secrets inventory",
    "secret_parity": "Secret parity",
    "rotation": "Rotation",
    "machine_drift": "Machine config drift",
    "orphans_and_stuck_work": "Orphans and stuck work",
    "audit_chain": "Audit chain",
}
# A secret due for rotation within this many days is a warning.
DUE_SOON_DAYS = 14
GITHUB_ACTIONS = "github-actions"
FLY_PREFIX = "fly:"
# What one deploy step may take beyond its own waits (health deadline, verification window).
STEP_MARGIN_SECONDS = 300
DATE = "%Y-%m-%d"


def location_label(location: str) -> str:
    """ "GitHub Actions" or "Fly production" for a stored location key."""
    if location == GITHUB_ACTIONS:
        return "GitHub Actions"
    return f"Fly {location.removeprefix(FLY_PREFIX)}"


def fly_location(environment_name: str) -> str:
    return f"{FLY_PREFIX}{environment_name}"


@dataclass(frozen=True)
class Finding:
    """One check's verdict. ``data`` holds what pages need beyond the text (JSON-safe)."""

    key: str
    status: str
    reason: str
    details: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return CHECKS[self.key]

    @property
    def label(self) -> str:
        return LABELS[self.status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "reason": self.reason,
            "details": list(self.details),
            "data": json.loads(json.dumps(dict(self.data), default=str)),
        }

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> Finding:
        return cls(
            key=stored["key"],
            status=stored["status"],
            reason=stored["reason"],
            details=tuple(stored.get("details") or ()),
            data=stored.get("data") or {},
        )


def overall(findings: Iterable[Finding]) -> str:
    """FAIL if any check fails, else WARN if any warns, else PASS."""
    statuses = {finding.status for finding in findings}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


def changes_between(previous: Mapping[str, str], current: Mapping[str, str]) -> dict[str, list]:
    """Checks that turned FAIL since the previous run (a check with no previous verdict counts
    as newly failing), and checks that were FAIL and are not any more; by check key."""
    return {
        "newly_failing": [k for k, s in current.items() if s == FAIL and previous.get(k) != FAIL],
        "fixed": [k for k, s in current.items() if s != FAIL and previous.get(k) == FAIL],
    }


def _summary(problems: Sequence[str]) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


# --- branch protection and CI ------------------------------------------------------------------


def branch_protection_finding(
    protection: Any, *, branch: str, required_checks: Sequence[str], min_reviews: int
) -> Finding:
    """The default branch's protection against the app's policy (``protection`` is an
    integrations BranchProtection, or None when the branch is unprotected)."""
    key = "branch_protection"
    if protection is None:
        return Finding(key, FAIL, f"{branch} is not protected")
    protected = list(protection.required_checks)
    missing = [name for name in required_checks if name not in protected]
    extra = [name for name in protected if name not in required_checks]
    problems = []
    if missing:
        problems.append(f"required checks missing: {', '.join(missing)}")
    if extra:
        problems.append(f"required checks not in the policy: {', '.join(extra)}")
    rules = (
        (protection.strict, "branches need not be up to date before merging (strict is off)"),
        (
            protection.required_approving_review_count >= min_reviews,
            f"{protection.required_approving_review_count} approving reviews required, "
            f"the policy wants at least {min_reviews}",
        ),
        (protection.dismiss_stale_reviews, "stale reviews are not dismissed"),
        (protection.required_conversation_resolution, "conversation resolution is not required"),
        (protection.required_linear_history, "linear history is not required"),
        (not protection.allow_force_pushes, "force pushes are allowed"),
        (not protection.allow_deletions, "deletion of the branch is allowed"),
        (protection.enforce_admins, "admins are not included"),
    )
    problems += [problem for ok, problem in rules if not ok]
    if problems:
        return Finding(key, FAIL, f"{branch}: {_summary(problems)}", tuple(problems))
    return Finding(
        key,
        PASS,
        f"{branch}: {len(protected)} required checks, strict, "
        f"{protection.required_approving_review_count} approving review(s), every rule on",
        (f"required checks: {', '.join(protected)}",),
    )


def recent_ci_finding(
    runs: Sequence[Any], *, branch: str, required_checks: Sequence[str]
) -> Finding:
    """The latest run of each check on the default branch's head (integrations CheckRuns):
    every required check succeeded; a failed check that is not required only warns."""
    key = "recent_ci"
    latest: dict[str, Any] = {}
    for run in sorted(runs, key=lambda run: run.id):
        latest[run.name] = run

    def outcome(run: Any) -> str:
        return run.conclusion if run.status == "completed" else run.status

    failed, running = [], []
    for name in required_checks:
        run = latest.get(name)
        if run is None:
            failed.append(f"{name}: no run")
        elif run.status != "completed":
            running.append(f"{name}: {run.status}")
        elif run.conclusion not in ("success", "skipped", "neutral"):
            failed.append(f"{name}: {run.conclusion}")
    optional = [
        f"{name}: {outcome(run)} (not required)"
        for name, run in sorted(latest.items())
        if name not in required_checks
        and run.status == "completed"
        and run.conclusion not in ("success", "skipped", "neutral")
    ]
    details = tuple(failed + running + optional)
    if failed:
        return Finding(key, FAIL, f"{branch}: {_summary(failed)}", details)
    if running or optional:
        return Finding(key, WARN, f"{branch}: {_summary(running + optional)}", details)
    return Finding(key, PASS, f"{branch}: all {len(required_checks)} required checks succeeded")


# --- repository security -----------------------------------------------------------------------


def repository_security_finding(repository: Any, alerts: Sequence[Any] | None) -> Finding:
    """Secret scanning and push protection on, and no open secret-scanning alert (count, and
    the newest one's type and date; an alert's secret is never read). ``alerts`` is None
    when GitHub would not list them."""
    key = "repository_security"
    problems = []
    if repository.secret_scanning is None:
        return Finding(key, WARN, "secret scanning settings are not visible to HotDash's token")
    if not repository.secret_scanning:
        problems.append("secret scanning is off")
    if not repository.secret_scanning_push_protection:
        problems.append("push protection is off")
    details: list[str] = []
    if alerts:
        newest = alerts[0]
        when = f"{newest.created_at:{DATE}}" if newest.created_at else "an unknown date"
        kind = newest.secret_type_display_name or newest.secret_type
        problems.append(f"{len(alerts)} open secret-scanning alert(s); newest: {kind} on {when}")
        details = [
            f"#{alert.number} {alert.secret_type_display_name or alert.secret_type}"
            + (f" on {alert.created_at:{DATE}}" if alert.created_at else "")
            for alert in alerts
        ]
    if problems:
        return Finding(key, FAIL, _summary(problems), tuple(problems[1:] + details))
    return Finding(key, PASS, "secret scanning and push protection on; no open alerts")


# --- secrets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretEntry:
    """A secret where it lives: a location key, its name, when its value was last set."""

    location: str
    name: str
    updated_at: datetime | None
    digest: str = ""


def secrets_inventory_finding(entries: Sequence[SecretEntry]) -> Finding:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.location] = counts.get(entry.location, 0) + 1
    where = ", ".join(f"{count} in {location_label(loc)}" for loc, count in counts.items())
    details = tuple(
        f"{entry.name} ({location_label(entry.location)}): last set "
        + (f"{entry.updated_at:{DATE}}" if entry.updated_at else "on an unknown date")
        for entry in entries
    )
    undated = [entry.name for entry in entries if entry.updated_at is None]
    data = {
        "secrets": [
            {
                "location": entry.location,
                "name": entry.name,
                "updated_at": entry.updated_at.isoformat() if entry.updated_at else None,
                "digest": entry.digest,
            }
            for entry in entries
        ]
    }
    if undated:
        reason = f"no date for {', '.join(undated)}"
        return Finding("secrets_inventory", WARN, reason, details, data)
    reason = f"{len(entries)} secrets: {where}" if entries else "no secrets found"
    return Finding("secrets_inventory", PASS, reason, details, data)


def secret_parity_finding(
    names: Mapping[str, set[str]], *, production: str, staging: str, previews: Sequence[str]
) -> Finding:
    """Production and staging hold the same names; each preview only names staging has.
    ``names`` maps an environment's name to its Fly secret names; ``production`` or
    ``staging`` may be "" when the app has no such environment."""
    key = "secret_parity"
    if not production or not staging:
        return Finding(key, PASS, "no production and staging pair to compare")
    problems = []
    only_production = sorted(names[production] - names[staging])
    only_staging = sorted(names[staging] - names[production])
    if only_production:
        problems.append(f"only in {production}: {', '.join(only_production)}")
    if only_staging:
        problems.append(f"only in {staging}: {', '.join(only_staging)}")
    for preview in previews:
        foreign = sorted(names[preview] - names[staging])
        if foreign:
            problems.append(f"{preview} holds names staging has not: {', '.join(foreign)}")
    if problems:
        return Finding(key, FAIL, _summary(problems), tuple(problems))
    checked = f" and {len(previews)} preview(s)" if previews else ""
    return Finding(
        key, PASS, f"{production} and {staging}{checked} agree ({len(names[staging])} names)"
    )


@dataclass(frozen=True)
class Rotation:
    """Where one secret stands against its rotation period."""

    last_set: datetime | None  # the later of the upstream date and a recorded rotation
    period_days: int
    due: datetime | None
    age_days: int | None
    status: str

    @property
    def overdue(self) -> bool:
        return self.status == FAIL


def rotation_of(
    *,
    updated_at: datetime | None,
    rotated_at: datetime | None,
    period_days: int | None,
    default_days: int,
    now: datetime,
) -> Rotation:
    """A secret is overdue (FAIL) past its period, due soon (WARN) within DUE_SOON_DAYS of it.
    Its age counts from the later of the date upstream reports and a rotation recorded in
    HotDash; ``period_days`` (the secret's own) overrides the app's ``default_days``."""
    period = period_days or default_days
    dates = [moment for moment in (updated_at, rotated_at) if moment is not None]
    if not dates:
        return Rotation(None, period, None, None, WARN)
    last_set = max(dates)
    due = last_set + timedelta(days=period)
    if now >= due:
        status = FAIL
    elif now >= due - timedelta(days=DUE_SOON_DAYS):
        status = WARN
    else:
        status = PASS
    return Rotation(last_set, period, due, (now - last_set).days, status)


def rotation_finding(rotations: Sequence[tuple[SecretEntry, Rotation]]) -> Finding:
    key = "rotation"
    overdue, soon, lines = [], [], []
    for entry, rotation in rotations:
        where = f"{entry.name} ({location_label(entry.location)})"
        if rotation.last_set is None:
            line = f"{where}: no date known; rotation every {rotation.period_days} days"
        else:
            line = (
                f"{where}: {rotation.age_days} days old, rotation every "
                f"{rotation.period_days} days, due {rotation.due:{DATE}}"
            )
        lines.append(line)
        if rotation.status == FAIL:
            overdue.append(f"{where} is {rotation.age_days} days old, overdue")
        elif rotation.status == WARN:
            soon.append(line)
    if overdue:
        return Finding(key, FAIL, _summary(overdue), tuple(lines))
    if soon:
        return Finding(key, WARN, f"due soon: {_summary(soon)}", tuple(lines))
    return Finding(
        key, PASS, f"{len(rotations)} secrets within their rotation period", tuple(lines)
    )


# --- machines, stuck work, audit ---------------------------------------------------------------


def machine_drift_finding(drift: Sequence[tuple[Any, Sequence[Any]]]) -> Finding:
    """``drift``: per environment, its running machines' drift (``selectors.drift.
    machines_drift``: items with ``machine`` and ``differences``), compared with the declared
    config as the environment page and the drift sweep compare it; and the machine count."""
    problems = []
    for environment, machines in drift:
        name = environment.name
        if len(machines) != environment.machine_count:
            problems.append(
                f"{name}: {len(machines)} machine(s) running, {environment.machine_count} declared"
            )
        problems += [
            f"{name}: machine {item.machine.id} {difference.field} is {difference.live!r}, "
            f"declared {difference.declared!r}"
            for item in machines
            for difference in item.differences
        ]
    if problems:
        return Finding("machine_drift", FAIL, _summary(problems), tuple(problems))
    names = ", ".join(environment.name for environment, _ in drift) or "no environments"
    return Finding("machine_drift", PASS, f"machines match the declared config ({names})")


def deploy_allowed_seconds(environment: Any, step_kinds: Sequence[str]) -> int:
    """How long a deploy's plan allows it to run: per machine batch the health deadline, the
    verification window, and STEP_MARGIN_SECONDS for every step."""
    declared = declared_config(environment)
    deadline = health_deadline_seconds(
        grace=declared.slowest_check_grace,
        timeout=declared.slowest_check_timeout,
        attempts=environment.health_attempts,
    )
    batches = sum(1 for kind in step_kinds if kind == "update_batch")
    waits = batches * deadline + environment.verification_window_seconds
    return waits + STEP_MARGIN_SECONDS * max(1, len(step_kinds))


def orphans_and_stuck_finding(orphans: Sequence[str], stuck: Sequence[str]) -> Finding:
    problems = [f"Fly app {name} looks like a preview but has no open PR" for name in orphans]
    problems += list(stuck)
    if problems:
        return Finding("orphans_and_stuck_work", FAIL, _summary(problems), tuple(problems))
    return Finding("orphans_and_stuck_work", PASS, "no orphan preview apps, nothing stuck")


def audit_chain_finding(result: Any) -> Finding:
    """``result`` is approvals.audit.VerifyResult."""
    return Finding("audit_chain", PASS if result.ok else FAIL, result.summary())


# --- the gap report ----------------------------------------------------------------------------


def report_markdown(
    *, app: str, at: datetime, result: str, findings: Sequence[Finding], error: str = ""
) -> str:
    """The gap report: title, date, and each check's PASS/WARN/FAIL with its reason
    (``result`` is the run's label: PASS, WARN or FAIL)."""
    lines = [f"# Compliance gap report: {app}", "", f"Date: {at:%Y-%m-%d %H:%M} UTC", ""]
    if error:
        return "\n".join([*lines, f"**Could not run**: {error}", ""])
    failing = sum(1 for finding in findings if finding.status == FAIL)
    lines += [f"Result: **{result}** ({failing} of {len(findings)} checks failing)", ""]
    lines += ["| Check | Result | Reason |", "| --- | --- | --- |"]
    for finding in findings:
        reason = finding.reason.replace("|", "\\|")
        lines.append(f"| {finding.title} | **{finding.label}** | {reason} |")
    for finding in findings:
        if finding.status != PASS and finding.details:
            lines += ["", f"## {finding.label}: {finding.title}", ""]
            lines += [f"- {detail}" for detail in finding.details]
    return "\n".join(lines) + "\n"


def report_text(
    *, app: str, at: datetime, result: str, findings: Sequence[Finding], error: str = ""
) -> str:
    head = f"Compliance {app} {at:%Y-%m-%d %H:%M} UTC: "
    if error:
        return f"{head}could not run: {error}\n"
    lines = [head + result]
    for finding in findings:
        lines.append(f"  {finding.label}  {finding.title}: {finding.reason}")
        if finding.status != PASS:
            lines += [f"        - {detail}" for detail in finding.details]
    return "\n".join(lines) + "\n"
