"""Preview environments: one Fly app per pull request, announced on the PR, asleep when idle,
destroyed when the PR closes, when it grows too old, or when the orphan sweep finds it.

A pull request from a fork is untrusted code: its preview is held (``awaiting_approval``, no
Fly app, nothing deployed) until a maintainer approves one exact head commit, and every later
push holds it again, removing the app, until that commit is approved in turn. Fork previews
never get secrets, approved or not.

Remote calls (Fly, GitHub) happen outside database transactions; each state change is one
transaction with its audit event. Every step reads remote state before it mutates, so a task
that runs twice converges on the same result.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from approvals import policy
from approvals.audit import record
from deployments.models import App, Build, Deploy, Environment, Preview
from deployments.services.builds import build_simulate
from deployments.services.deploys import (
    deploy_abort,
    deploy_cancel,
    deploy_supersede,
)
from deployments.services.requests import deploy_request
from hotdash.errors import Refused
from hotdash.integrations import PermanentAPIError, fly_client, github_client
from hotdash.integrations.github import parse_pull_request

log = logging.getLogger(__name__)

COMMENT_MARKER = "<!-- hotdash:preview -->"
SYNC_ACTIONS = frozenset({"opened", "reopened", "synchronize", "ready_for_review"})
# Deploys that still hold or wait for the environment; a newer push supersedes them.
PENDING_STATES = (
    Deploy.State.REQUESTED,
    Deploy.State.AWAITING_APPROVAL,
    Deploy.State.QUEUED,
    Deploy.State.RUNNING,
    Deploy.State.VERIFYING,
)
WAKEABLE_MACHINE_STATES = frozenset({"stopped", "suspended"})
# Preview states in which its Fly app may exist.
APP_STATES = frozenset(
    {
        Preview.State.CREATING,
        Preview.State.RUNNING,
        Preview.State.SLEEPING,
        Preview.State.FAILED,
    }
)


@dataclass(frozen=True)
class PullRequestFacts:
    number: int
    title: str
    author: str
    branch: str
    head_sha: str
    draft: bool
    is_fork: bool
    labels: frozenset[str]


# What every ``pull_request`` payload has: (dotted path, the JSON types it may hold). A head
# repository of null is GitHub's word for a deleted fork; a missing one is a malformed payload.
PULL_REQUEST_SHAPE: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("pull_request", (dict,)),
    ("pull_request.number", (int,)),
    ("pull_request.state", (str,)),
    ("pull_request.head", (dict,)),
    ("pull_request.head.ref", (str,)),
    ("pull_request.head.sha", (str,)),
    ("pull_request.head.repo", (dict, type(None))),
    ("pull_request.base", (dict,)),
    ("pull_request.base.repo", (dict,)),
    ("pull_request.base.repo.full_name", (str,)),
)
PR_NUMBER_MAX = 2**31 - 1  # Preview.pr_number


def _require_shape(payload: dict[str, Any]) -> None:
    """ValueError naming the first member of PULL_REQUEST_SHAPE the payload lacks: a signed
    payload without them is malformed and refused, never interpreted (a missing head must not
    read as a deleted fork)."""
    for path, kinds in PULL_REQUEST_SHAPE:
        value: Any = payload
        for name in path.split("."):
            if not isinstance(value, dict) or name not in value:
                raise ValueError(f"{path} is missing")
            value = value[name]
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ValueError(f"{path} is not a {' or '.join(k.__name__ for k in kinds)}")
    if not 1 <= payload["pull_request"]["number"] <= PR_NUMBER_MAX:
        raise ValueError("pull_request.number is out of range")


def pull_request_facts(payload: dict[str, Any]) -> PullRequestFacts:
    """What a ``pull_request`` payload says about the PR. A head repository that differs from
    the base repository, or that is gone (a deleted fork), makes the PR an untrusted fork."""
    _require_shape(payload)
    data = payload["pull_request"]
    pull = parse_pull_request(data)
    base_repo = data["base"]["repo"]["full_name"]
    return PullRequestFacts(
        number=pull.number,
        title=pull.title,
        author=pull.user_login,
        branch=pull.head_ref,
        head_sha=pull.head_sha,
        draft=pull.draft,
        is_fork=not pull.head_repo or pull.head_repo.lower() != base_repo.lower(),
        labels=frozenset(
            label["name"] for label in data.get("labels") or () if isinstance(label, dict)
        ),
    )


def preview_fly_app_name(*, app: App, number: int) -> str:
    return app.preview_app_template.format(app=app.name, number=number).lower()


def preview_app_pattern(app: App) -> re.Pattern[str]:
    """Matches the Fly app names the template produces for ``app``; group 1 is the PR number."""
    before, _, after = app.preview_app_template.lower().partition("{number}")
    name = app.name.lower()
    return re.compile(
        "^"
        + re.escape(before.replace("{app}", name))
        + r"(\d+)"
        + re.escape(after.replace("{app}", name))
        + "$"
    )


# --- webhook entry points ----------------------------------------------------------------------


def preview_sync(*, app: App, facts: PullRequestFacts) -> str:
    """Create or update the preview of an open PR and deploy its head commit's build."""
    if not app.preview_enabled:
        return f"previews are off for {app.name}"
    with github_client(app.github_owner, app.github_repo) as github:
        # GitHub's current view, not the payload's: deliveries can arrive out of order.
        pull = github.get_pull(facts.number)
    if pull.state != "open":
        return f"PR #{facts.number} is {pull.state}; nothing to deploy"
    if pull.draft and app.preview_opt_in_label not in facts.labels:
        return f"draft PR #{facts.number} skipped (label it '{app.preview_opt_in_label}' to opt in)"
    own_repo = f"{app.github_owner}/{app.github_repo}".lower()
    facts = PullRequestFacts(
        number=facts.number,
        title=pull.title,
        author=pull.user_login,
        branch=pull.head_ref,
        head_sha=pull.head_sha,
        draft=pull.draft,
        # Either view saying "fork" is enough.
        is_fork=facts.is_fork or pull.head_repo.lower() != own_repo,
        labels=facts.labels,
    )
    preview, remove_app = _preview_upsert(app=app, facts=facts)
    if preview.state == Preview.State.AWAITING_APPROVAL:
        if remove_app:
            _app_remove(
                preview=preview,
                actor="github",
                reason=f"fork commit {facts.head_sha[:7]} awaits maintainer approval",
            )
        outcome = f"fork PR #{facts.number}: {facts.head_sha[:7]} awaits maintainer approval"
    else:
        _fly_app_ensure(preview=preview)
        _secrets_copy(preview=preview)
        outcome = _head_deploy(preview=preview)
    preview_comment_update(preview=preview)
    return outcome


def _head_deploy(*, preview: Preview, user: Any = None, ip: str | None = None) -> str:
    """Deploy the build of the PR's head commit (simulated in sandbox mode) if there is one."""
    sha, number = preview.head_sha, preview.pr_number
    build = Build.objects.filter(app=preview.app, commit_sha=sha).first()
    if build is None and settings.SANDBOX_MODE:
        build = build_simulate(app=preview.app, commit_sha=sha, pr_number=number)
    if build is None:
        return f"PR #{number}: waiting for the CI build of {sha[:7]}"
    reason = f"Approved preview of fork PR #{number} at {sha[:7]}" if user else ""
    deploy = preview_deploy(preview=preview, build=build, requested_by=user, reason=reason, ip=ip)
    if deploy is None:
        return f"PR #{number}: {sha[:7]} already deploying or live"
    return f"PR #{number}: deploy #{deploy.pk} of {sha[:7]}"


def preview_close(*, app: App, number: int, merged: bool) -> str:
    preview = Preview.objects.filter(app=app, pr_number=number).select_related("app").first()
    if preview is None:
        return f"PR #{number} closed; it had no preview"
    if preview.state == Preview.State.DESTROYED:
        return f"PR #{number} closed; preview already destroyed"
    reason = "pull request merged" if merged else "pull request closed"
    preview_destroy(preview=preview, actor="github", reason=reason)
    return f"PR #{number} {'merged' if merged else 'closed'}; preview destroyed"


def preview_deploy_for_build(*, build: Build) -> list[int]:
    """A build arrived: deploy it to every live preview whose PR head is that commit."""
    deployed = []
    for preview in Preview.objects.filter(app=build.app, head_sha=build.commit_sha).exclude(
        state__in=(Preview.State.DESTROYED, Preview.State.AWAITING_APPROVAL)
    ):
        if preview_deploy(preview=preview, build=build):
            deployed.append(preview.pk)
        preview_comment_update(preview=preview)
    return deployed


# --- the steps -------------------------------------------------------------------------------


def _preview_environment(*, app: App, number: int) -> Environment:
    staging = app.environments.filter(kind=Environment.Kind.STAGING).first()
    fly_app = preview_fly_app_name(app=app, number=number)
    environment, _ = Environment.objects.get_or_create(
        app=app,
        name=f"pr-{number}",
        defaults={
            "kind": Environment.Kind.PREVIEW,
            "fly_app_name": fly_app,
            "url": f"https://{fly_app}.fly.dev",
            "region": staging.region if staging else Environment._meta.get_field("region").default,
            "machine_count": 1,
            "machine_cpu_kind": "shared",
            "machine_cpus": 1,
            "machine_memory_mb": 512,
            # Idle previews stop and start again on a request.
            "min_machines_running": 0,
            "auto_stop_machines": Environment.AutoStop.STOP,
            "auto_start_machines": True,
            "approvals_required": 0,
            "health_http_path": "/health",
            "health_http_interval_seconds": 10,
            "health_attempts": 5,
        },
    )
    return environment


def _preview_upsert(*, app: App, facts: PullRequestFacts) -> tuple[Preview, bool]:
    """The PR's Preview row, created (or revived after destruction) and up to date; a fork's
    unapproved head commit holds it. True when the held preview's Fly app must be removed."""
    with transaction.atomic():
        environment = _preview_environment(app=app, number=facts.number)
        preview, created = Preview.objects.select_for_update().get_or_create(
            app=app,
            pr_number=facts.number,
            defaults={"environment": environment, "url": environment.url},
        )
        revived = preview.state == Preview.State.DESTROYED
        before = {"state": preview.state, "head_sha": preview.head_sha}
        now = timezone.now()
        preview.environment = environment
        preview.url = environment.url
        preview.pr_title = facts.title[:300]
        preview.pr_author = facts.author[:100]
        preview.branch = facts.branch[:255]
        preview.head_sha = facts.head_sha
        # A PR's head repository never changes: once seen as a fork, always a fork.
        preview.is_fork = preview.is_fork or facts.is_fork
        preview.is_draft = facts.draft
        preview.updated_at = now
        if revived:
            preview.state = Preview.State.CREATING
            preview.destroyed_at = None
            preview.created_at = now  # the maximum age counts from the revival
            preview.approved_sha, preview.approved_by, preview.approved_at = "", None, None
        hold = preview.is_fork and (
            preview.state == Preview.State.AWAITING_APPROVAL
            or preview.approved_sha != facts.head_sha
        )
        if hold:
            preview.state = Preview.State.AWAITING_APPROVAL
        preview.save()
        if created or revived:
            record(
                actor="github",
                verb="preview.created",
                target=preview,
                scope=environment,
                data={
                    "pr": facts.number,
                    "fly_app": environment.fly_app_name,
                    "head_sha": facts.head_sha,
                    "fork": preview.is_fork,
                    "revived": revived,
                },
            )
        # Once approved, every hold makes sure the app is gone (a failed removal converges).
        remove_app = (
            hold and not created and (before["state"] in APP_STATES or bool(preview.approved_sha))
        )
        if hold and (before["state"] != preview.state or before["head_sha"] != facts.head_sha):
            record(
                actor="github",
                verb="preview.held",
                target=preview,
                scope=environment,
                data={
                    "from": before["state"],
                    "head_sha": facts.head_sha,
                    "approved_sha": preview.approved_sha,
                    "author": preview.pr_author,
                    "removes_app": remove_app,
                },
            )
    return preview, remove_app


def _fly_app_ensure(*, preview: Preview, actor: Any = "github") -> None:
    environment = preview.environment
    with fly_client() as fly:
        if fly.find_app(environment.fly_app_name) is not None:
            return
        fly.create_app(environment.fly_app_name, preview.app.fly_org)
    with transaction.atomic():
        record(
            actor=actor,
            verb="preview.app_created",
            target=preview,
            scope=environment,
            data={"fly_app": environment.fly_app_name, "org": preview.app.fly_org},
        )


@sensitive_variables("values")
def _secrets_copy(*, preview: Preview) -> None:
    """Copy staging's secrets onto the preview app; forks (untrusted heads) get none."""
    if preview.is_fork:
        names: list[str] = []
    else:
        staging = preview.app.environments.filter(kind=Environment.Kind.STAGING).first()
        if staging is None:
            names = []
        else:
            with fly_client() as fly:
                values = fly.reveal_secrets(staging.fly_app_name)
                if values:
                    fly.set_secrets(preview.environment.fly_app_name, values)
                names = sorted(values)
                del values
    if names == preview.secret_names:
        return
    with transaction.atomic():
        locked = Preview.objects.select_for_update().get(pk=preview.pk)
        locked.secret_names = names
        locked.save(update_fields=["secret_names"])
        record(
            actor="github",
            verb="preview.secrets_copied",
            target=locked,
            scope=preview.environment,
            data={"names": names, "from": "staging", "fork": preview.is_fork},
        )
    preview.secret_names = names


def preview_deploy(
    *,
    preview: Preview,
    build: Build,
    requested_by: Any = None,
    reason: str = "",
    ip: str | None = None,
) -> Deploy | None:
    """Request a preview deploy of ``build``, superseding whatever older deploy is pending or
    running for the PR, so that only the newest commit ever deploys.

    A system request for a commit that is already deploying or live is a no-op (None); a
    person's redeploy always deploys. A refused request marks the preview failed. A fork's
    commit deploys only while it is the approved one and the preview is not held.
    """
    actor = requested_by or "github"
    with transaction.atomic():
        locked = (
            Preview.objects.select_for_update(of=("self",))
            .select_related("environment")
            .get(pk=preview.pk)
        )
        if locked.is_fork and (
            locked.state == Preview.State.AWAITING_APPROVAL
            or build.commit_sha != locked.approved_sha
        ):
            if requested_by is not None:
                raise Refused("preview_held", _held_message(locked))
            return None
        environment = locked.environment
        # Since the preview was (re)created: a revived preview deploys again.
        latest = (
            environment.deploys.filter(kind=Deploy.Kind.PREVIEW, created_at__gte=locked.created_at)
            .exclude(state__in=(Deploy.State.SUPERSEDED, Deploy.State.CANCELLED))
            .first()
        )
        if requested_by is None and latest is not None and latest.commit_sha == build.commit_sha:
            return None
        older = list(environment.deploys.filter(state__in=PENDING_STATES))
        try:
            deploy = deploy_request(
                environment=environment,
                build=build,
                kind=Deploy.Kind.PREVIEW,
                requested_by=requested_by,
                system_actor="" if requested_by else "github",
                reason=reason or f"Preview of PR #{locked.pr_number} at {build.commit_sha[:7]}",
                ip=ip,
            )
        except Refused as refusal:
            _state_set(
                preview=locked,
                state=Preview.State.FAILED,
                actor=actor,
                data={"refused": refusal.code, "message": refusal.message},
            )
            if requested_by is not None:
                raise
            return None
        for old in older:
            with contextlib.suppress(Refused):  # it ended on its own meanwhile
                deploy_supersede(old=old, new=deploy, actor=actor)
        _state_set(
            preview=locked, state=Preview.State.CREATING, actor=actor, data={"deploy": deploy.pk}
        )
    preview.state = locked.state
    return deploy


def _state_set(
    *,
    preview: Preview,
    state: str,
    actor: Any,
    data: dict[str, Any],
    verb: str = "preview.state_changed",
    ip: str | None = None,
) -> None:
    """Set a locked preview's state inside the caller's transaction, auditing any change."""
    if preview.state == state:
        return
    before = preview.state
    preview.state = state
    preview.updated_at = timezone.now()
    preview.save(update_fields=["state", "updated_at"])
    record(
        actor=actor,
        verb=verb,
        target=preview,
        app=preview.app.name,
        environment=preview.environment.name if preview.environment else "",
        data={"from": before, "to": state, **data},
        ip=ip,
    )


# --- the PR comment ------------------------------------------------------------------------------


def _latest_deploy(preview: Preview) -> Deploy | None:
    if preview.environment is None:
        return None
    return (
        preview.environment.deploys.filter(kind=Deploy.Kind.PREVIEW)
        .exclude(state=Deploy.State.SUPERSEDED)
        .first()
    )


def preview_comment_body(*, preview: Preview, deploy: Deploy | None) -> str:
    """The sticky PR comment: state (in the words of ``Preview.State``), URL, commit, time,
    what happens next. Never titles or branch names (attacker-controlled) and never secrets."""
    state = Preview.State(preview.state)
    held = state == Preview.State.AWAITING_APPROVAL
    commit = (deploy.commit_sha if deploy and not held else preview.head_sha)[:7]
    if held:
        url = "none (no app until approved)"
    elif state == Preview.State.DESTROYED:
        url = f"~~{preview.url}~~"
    else:
        url = preview.url
    lines = [
        COMMENT_MARKER,
        f"### HotDash preview: **{state.label}**",
        "",
        state.description,
        "",
        "| | |",
        "|---|---|",
        f"| URL | {url} |",
        f"| Commit | `{commit}` |",
        f"| Updated | {timezone.now():%Y-%m-%d %H:%M} UTC |",
        "",
    ]
    if state in (Preview.State.RUNNING, Preview.State.SLEEPING):
        lines.append(
            "The preview sleeps when idle. Opening the URL wakes it (the first request takes a "
            "few seconds); or press **Wake** on the preview's HotDash page."
        )
    elif state == Preview.State.CREATING:
        lines.append(
            f"Deploying `{commit}` (deploy #{deploy.pk})."
            if deploy is not None
            else f"Waiting for the CI build of `{commit}`."
        )
    elif state == Preview.State.FAILED and deploy is not None:
        lines.append(f"Deploy #{deploy.pk} failed: {deploy.error or 'see HotDash for details'}.")
    elif held:
        lines.append(_held_message(preview))
    return "\n".join(lines)


def _held_message(preview: Preview) -> str:
    """What a held fork preview waits for; shown in the PR comment and on refused actions."""
    text = (
        f"This pull request comes from a fork, so HotDash does not deploy it automatically: "
        f"a maintainer must approve the preview of commit `{preview.head_sha[:7]}` on the "
        f"HotDash Previews page. Fork previews never receive secrets."
    )
    if preview.approved_sha and preview.approved_sha != preview.head_sha:
        text += (
            f" Commit `{preview.approved_sha[:7]}` was approved before; since a new commit "
            f"arrived, its preview app was removed and nothing from this PR runs until the new "
            f"commit is approved."
        )
    return text


def preview_comment_update(*, preview: Preview) -> None:
    """Create or edit the one HotDash comment on the PR (found again by its hidden marker)."""
    body = preview_comment_body(preview=preview, deploy=_latest_deploy(preview))
    app = preview.app
    with github_client(app.github_owner, app.github_repo) as github:
        comment = None
        if preview.comment_id:
            try:
                comment = github.update_comment(preview.comment_id, body)
            except PermanentAPIError as error:
                if error.status != 404:
                    raise
        if comment is None:
            comment = github.upsert_comment(preview.pr_number, COMMENT_MARKER, body)
    Preview.objects.filter(pk=preview.pk).update(comment_id=comment.id, comment_body=body)
    preview.comment_id, preview.comment_body = comment.id, body


# --- destruction -------------------------------------------------------------------------------


def preview_destroy(
    *,
    preview: Preview,
    actor: Any,
    reason: str,
    verb: str = "preview.destroyed",
    ip: str | None = None,
) -> Preview:
    """Stop pending deploys, delete the Fly app, keep the record (state destroyed), tell the PR.
    A held fork preview that was never approved has no app: nothing to ask Fly."""
    environment = preview.environment
    if preview.state == Preview.State.AWAITING_APPROVAL and not preview.approved_sha:
        _deploys_stop(preview=preview, actor=actor, reason=f"preview destroyed: {reason}")
    else:
        _app_remove(preview=preview, actor=actor, reason=f"preview destroyed: {reason}")
    with transaction.atomic():
        locked = Preview.objects.select_for_update().get(pk=preview.pk)
        before = locked.state
        locked.state = Preview.State.DESTROYED
        locked.destroyed_at = locked.updated_at = timezone.now()
        locked.save(update_fields=["state", "destroyed_at", "updated_at"])
        record(
            actor=actor,
            verb=verb,
            target=locked,
            scope=environment,
            data={"fly_app": environment.fly_app_name, "reason": reason, "from": before},
            ip=ip,
        )
    preview.state, preview.destroyed_at = locked.state, locked.destroyed_at
    preview_comment_update(preview=preview)
    return preview


def _app_remove(*, preview: Preview, actor: Any, reason: str) -> None:
    """Stop the preview's pending deploys, then delete its Fly app (absent counts as deleted)."""
    _deploys_stop(preview=preview, actor=actor, reason=reason)
    with fly_client() as fly:
        fly.delete_app(preview.environment.fly_app_name, force=True)


def _deploys_stop(*, preview: Preview, actor: Any, reason: str) -> None:
    for deploy in preview.environment.deploys.filter(state__in=PENDING_STATES):
        _deploy_stop(deploy=deploy, actor=actor, reason=reason)


def _deploy_stop(*, deploy: Deploy, actor: Any, reason: str) -> None:
    """Cancel a deploy that has not started, abort a running one; it may move meanwhile."""
    stoppers = [deploy_cancel, deploy_abort]
    if deploy.state in Deploy.ACTIVE_STATES:
        stoppers.reverse()
    for stop in stoppers:
        try:
            stop(deploy=deploy, actor=actor, reason=reason)
            return
        except Refused as error:
            if error.code == "finished":
                return


def preview_expire_due(*, now=None) -> list[str]:
    """Destroy every preview older than its app's maximum age."""
    now = now or timezone.now()
    expired = []
    for preview in Preview.objects.exclude(state=Preview.State.DESTROYED).select_related(
        "app", "environment"
    ):
        if preview.created_at < now - timedelta(days=preview.app.preview_max_age_days):
            days = preview.app.preview_max_age_days
            preview_destroy(
                preview=preview,
                actor="system",
                reason=f"older than the maximum age of {days} days",
                verb="preview.expired",
            )
            expired.append(preview.environment.fly_app_name)
    return expired


def preview_orphan_sweep() -> list[str]:
    """Destroy Fly apps that look like previews of an app but have no open PR; report each."""
    destroyed: list[str] = []
    for app in App.objects.filter(preview_enabled=True):
        pattern = preview_app_pattern(app)
        protected = set(
            app.environments.exclude(kind=Environment.Kind.PREVIEW).values_list(
                "fly_app_name", flat=True
            )
        )
        with fly_client() as fly:
            candidates = [
                (fly_app.name, int(match.group(1)))
                for fly_app in fly.list_apps(app.fly_org)
                if (match := pattern.match(fly_app.name)) and fly_app.name not in protected
            ]
        if not candidates:
            continue
        with github_client(app.github_owner, app.github_repo) as github:
            open_numbers = {pull.number for pull in github.list_pulls(state="open")}
        for fly_app_name, number in candidates:
            if number in open_numbers:
                continue
            destroyed.append(_orphan_destroy(app=app, fly_app_name=fly_app_name, number=number))
    return destroyed


def _orphan_destroy(*, app: App, fly_app_name: str, number: int) -> str:
    with fly_client() as fly:
        fly.delete_app(fly_app_name, force=True)
    preview = Preview.objects.filter(app=app, pr_number=number).select_related("app").first()
    with transaction.atomic():
        record(
            actor="system",
            verb="preview.orphan_destroyed",
            target=preview,
            app=app.name,
            data={"fly_app": fly_app_name, "pr": number, "had_record": preview is not None},
        )
        if preview is not None and preview.state != Preview.State.DESTROYED:
            locked = Preview.objects.select_for_update().get(pk=preview.pk)
            locked.state = Preview.State.DESTROYED
            locked.destroyed_at = locked.updated_at = timezone.now()
            locked.save(update_fields=["state", "destroyed_at", "updated_at"])
            preview.state = locked.state
        else:
            preview = None
    log.warning("orphan preview app %s (PR #%s has no open PR) destroyed", fly_app_name, number)
    if preview is not None:
        preview_comment_update(preview=preview)
    return fly_app_name


# --- sleep, wake, redeploy -------------------------------------------------------------------


def preview_state_refresh(*, preview: Preview) -> str:
    """Follow the preview's deploy (deploying → live/failed) and its machines (running/asleep)."""
    if preview.state == Preview.State.DESTROYED or preview.environment is None:
        return preview.state
    deploy = _latest_deploy(preview)
    if preview.state in (Preview.State.CREATING, Preview.State.FAILED) and deploy is not None:
        if deploy.state == Deploy.State.SUCCEEDED:
            _refresh_to(preview=preview, state=Preview.State.RUNNING, deploy=deploy)
            preview_comment_update(preview=preview)
        elif deploy.state == Deploy.State.FAILED and preview.state != Preview.State.FAILED:
            _refresh_to(preview=preview, state=Preview.State.FAILED, deploy=deploy)
            preview_comment_update(preview=preview)
        return preview.state
    if preview.state not in (Preview.State.RUNNING, Preview.State.SLEEPING):
        return preview.state
    with fly_client() as fly:
        try:
            machines = fly.list_machines(preview.environment.fly_app_name)
        except PermanentAPIError as error:
            if error.status != 404:
                raise
            machines = []
    states = {machine.state for machine in machines}
    if "started" in states:
        _refresh_to(preview=preview, state=Preview.State.RUNNING, deploy=None)
    elif states and states <= WAKEABLE_MACHINE_STATES:
        _refresh_to(preview=preview, state=Preview.State.SLEEPING, deploy=None)
    return preview.state


def _refresh_to(*, preview: Preview, state: str, deploy: Deploy | None) -> None:
    with transaction.atomic():
        locked = (
            Preview.objects.select_for_update(of=("self",))
            .select_related("app", "environment")
            .get(pk=preview.pk)
        )
        if locked.state in (Preview.State.DESTROYED, Preview.State.AWAITING_APPROVAL):
            return
        if deploy is None:
            _state_set(preview=locked, state=state, actor="worker", data={"source": "machines"})
        else:
            _state_set(
                preview=locked,
                state=state,
                actor="worker",
                verb="preview.deployed" if state == Preview.State.RUNNING else "preview.failed",
                data={"deploy": deploy.pk, "commit": deploy.commit_sha, "error": deploy.error},
            )
    preview.state = locked.state


def preview_state_refresh_all() -> dict[str, str]:
    """Refresh every preview that is not destroyed (beat)."""
    return {
        str(preview): preview_state_refresh(preview=preview)
        for preview in Preview.objects.exclude(state=Preview.State.DESTROYED).select_related(
            "app", "environment"
        )
    }


def preview_wake(*, preview: Preview, user: Any, ip: str | None = None) -> int:
    """Start the preview's stopped or suspended machines; returns how many were started.
    Refused when it is awake (a preview marked asleep is marked live even if Fly already
    woke its machines)."""
    if preview.state == Preview.State.DESTROYED:
        raise Refused(
            "preview_destroyed", "This preview was destroyed; push to the PR to recreate it."
        )
    if preview.state == Preview.State.AWAITING_APPROVAL:
        raise Refused("preview_held", _held_message(preview))
    fly_app = preview.environment.fly_app_name
    with fly_client() as fly:
        machines = fly.list_machines(fly_app)
        asleep = [m for m in machines if m.state in WAKEABLE_MACHINE_STATES]
        if not asleep and preview.state != Preview.State.SLEEPING:
            raise Refused(
                "preview_awake", "Nothing to wake: every machine of this preview is running."
            )
        for machine in asleep:
            fly.start_machine(fly_app, machine.id)
    with transaction.atomic():
        locked = (
            Preview.objects.select_for_update(of=("self",))
            .select_related("app", "environment")
            .get(pk=preview.pk)
        )
        record(
            actor=user,
            verb="preview.woken",
            target=locked,
            scope=locked.environment,
            data={"machines": [m.id for m in asleep]},
            ip=ip,
        )
        if locked.state == Preview.State.SLEEPING:
            _state_set(
                preview=locked, state=Preview.State.RUNNING, actor=user, data={"source": "wake"}
            )
    preview.state = locked.state
    return len(asleep)


def preview_redeploy(*, preview: Preview, user: Any, ip: str | None = None) -> Deploy:
    """A person redeploys the PR's head commit (its build must exist)."""
    if preview.state == Preview.State.DESTROYED:
        raise Refused(
            "preview_destroyed", "This preview was destroyed; push to the PR to recreate it."
        )
    if preview.state == Preview.State.AWAITING_APPROVAL:
        raise Refused("preview_held", _held_message(preview))
    build = Build.objects.filter(app=preview.app, commit_sha=preview.head_sha).first()
    if build is None:
        raise Refused(
            "no_build",
            f"No build is registered for {preview.head_sha[:7]} yet; "
            "CI posts it to /api/v1/builds.",
        )
    _fly_app_ensure(preview=preview)
    deploy = preview_deploy(
        preview=preview,
        build=build,
        requested_by=user,
        reason=f"Redeploy of PR #{preview.pr_number} at {build.commit_sha[:7]}",
        ip=ip,
    )
    preview_comment_update(preview=preview)
    return deploy


# --- maintainer approval of a fork's preview -------------------------------------------------


def preview_approve(
    *, preview: Preview, user: Any, sha: str, comment: str = "", ip: str | None = None
) -> str:
    """An approver lets the held fork preview deploy commit ``sha`` (the PR's head): creates
    the Fly app and deploys that commit's build, without secrets. Anyone else is refused with
    an audited ``preview.approval_refused`` (Refused ``not_approver``); a preview that is not
    held, or whose head moved on, is refused without an event."""
    comment = comment.strip()
    with transaction.atomic():
        locked = (
            Preview.objects.select_for_update(of=("self",))
            .select_related("app", "environment")
            .get(pk=preview.pk)
        )
        allowed = policy.can_approve(user)
        if not allowed:
            record(
                actor=user,
                verb="preview.approval_refused",
                target=locked,
                scope=locked.environment,
                data={"reason": "not_approver", "sha": sha, "role": policy.highest_role(user)},
                ip=ip,
            )
        elif locked.state != Preview.State.AWAITING_APPROVAL:
            raise Refused("preview_not_held", "This preview is not awaiting approval.")
        elif sha != locked.head_sha:
            raise Refused(
                "head_moved",
                f"Commit {sha[:7]} is no longer the head of the PR: review {locked.head_sha[:7]} "
                f"and approve that.",
            )
        else:
            locked.approved_sha, locked.approved_by = sha, user
            locked.approved_at = timezone.now()
            locked.save(update_fields=["approved_sha", "approved_by", "approved_at"])
            _state_set(
                preview=locked,
                state=Preview.State.CREATING,
                actor=user,
                verb="preview.approved",
                data={"sha": sha, "comment": comment, "fork": locked.is_fork},
                ip=ip,
            )
    if not allowed:
        raise Refused(
            "not_approver",
            "Only approvers and admins may approve a fork's preview; nothing was deployed.",
        )
    preview.refresh_from_db()
    _fly_app_ensure(preview=preview, actor=user)
    outcome = _head_deploy(preview=preview, user=user, ip=ip)
    preview_comment_update(preview=preview)
    return outcome
