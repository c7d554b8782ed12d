"""Reads for the releases, release, rollback and rollbacks pages and the releases API.

Releases are ordered in Python by SemVer precedence (see deployments.semver); releases per
app are bounded, and every function here runs a fixed number of queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, TypeVar

from django.core.paginator import Page, Paginator
from django.db.models import BooleanField, ExpressionWrapper, F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.shortcuts import get_object_or_404

from deployments import semver
from deployments.models import (
    RELEASE_DEPLOYABLE,
    App,
    Deploy,
    Environment,
    Release,
    RollbackHold,
)

# The Releases page at fleet scale: a page of apps, each with its newest releases (all of
# them when the page shows one app).
RELEASE_APPS_PER_PAGE = 10
NEWEST_RELEASES_SHOWN = 10
# The Rollbacks page at fleet scale: a page of apps, their environments and rollbacks.
ROLLBACK_APPS_PER_PAGE = 10
ROLLBACK_KINDS = (Deploy.Kind.ROLLBACK, Deploy.Kind.AUTO_ROLLBACK)
PRERELEASE_FILTERS = ("include", "exclude", "only")


@dataclass(frozen=True)
class ReleaseFilters:
    prereleases: str = "include"  # include / exclude / only
    deployable: bool = False
    environment: str = ""  # environment name: releases that were ever live there

    @classmethod
    def from_query(cls, query) -> ReleaseFilters:
        pre = query.get("prereleases", "include")
        return cls(
            prereleases=pre if pre in PRERELEASE_FILTERS else "include",
            deployable=query.get("deployable") in ("1", "true", "on"),
            environment=query.get("environment", "").strip(),
        )


@dataclass(frozen=True)
class Stage:
    """Where a release stands on one environment of the pipeline: ``outcome`` is ``succeeded``
    (it ran there successfully at least once), ``failed`` (it ran there and only failed) or
    ``never``."""

    environment: Environment
    outcome: str


@dataclass
class ReleaseRow:
    release: Release
    live_in: list[Environment] = field(default_factory=list)
    deployed_to: set[str] = field(default_factory=set)
    pipeline: list[Stage] = field(default_factory=list)


@dataclass
class AppReleases:
    app: App
    environments: list[Environment]
    rows: list[ReleaseRow]
    # Matching releases left out (older than the newest shown).
    hidden: int = 0


def release_blockers(release: Release) -> list[str]:
    """Why ``release`` cannot be deployed, one sentence each ([] when it can)."""
    return blockers_of(
        deleted_on_github_at=release.deleted_on_github_at,
        bad_marked_at=release.bad_marked_at,
        bad_marked_by=release.bad_marked_by.get_username() if release.bad_marked_by else None,
        bad_reason=release.bad_reason,
        validation=release.validation,
        validation_results=release.validation_results,
    )


def blockers_of(
    *,
    deleted_on_github_at: datetime | None,
    bad_marked_at: datetime | None,
    bad_marked_by: str | None,
    bad_reason: str,
    validation: str,
    validation_results: list[dict],
) -> list[str]:
    """``release_blockers`` from a release's values (``bad_marked_by`` a username)."""
    reasons = []
    if deleted_on_github_at is not None:
        reasons.append(f"Deleted on GitHub on {deleted_on_github_at:%Y-%m-%d %H:%M} UTC.")
    if bad_marked_at is not None:
        reasons.append(f"Marked bad by {bad_marked_by or 'system'}: {bad_reason}")
    if validation == Release.Validation.PENDING:
        reasons.append("Not validated yet.")
    reasons += [r["message"] for r in validation_results if not r.get("ok")]
    return reasons


def _ordered(releases: list) -> list:
    """Newest first by precedence; rejected tags last, newest published first. ``releases``
    are releases or rows with their ``version`` and ``validation``."""
    valid = [r for r in releases if r.validation != Release.Validation.REJECTED]
    rejected = [r for r in releases if r.validation == Release.Validation.REJECTED]
    return semver.sorted_by_precedence(valid, version_of=lambda r: r.version) + rejected


def release_apps_page(*, app_name: str = "", page: str | int | None = 1) -> Page:
    """A page of apps by name for the Releases page (only ``app_name`` if given); a page
    number out of range shows the last page, one that is not a number the first."""
    apps = App.objects.order_by("name", "id")
    if app_name:
        apps = apps.filter(name=app_name)
    return Paginator(apps, RELEASE_APPS_PER_PAGE).get_page(page)


@dataclass(frozen=True)
class Ranking:
    """Which releases of each app are shown, newest first, and how each went where it ran."""

    shown: dict[int, list[int]]  # app id: the ids of the releases shown
    hidden: dict[int, int]  # app id: matching releases left out (older than those shown)
    # (release id, environment id): succeeded (ran there successfully at least once) or failed
    # (ran there and only failed).
    outcomes: dict[tuple[int, int], str]

    def outcome(self, release_id: int, environment_id: int) -> str:
        return self.outcomes.get((release_id, environment_id), "never")


def _rank(
    *,
    app_ids: list[int],
    environments: list[tuple[int, int, str]],
    filters: ReleaseFilters,
    newest: int | None,
) -> Ranking:
    """The releases of ``app_ids`` matching ``filters`` (the ``newest`` of each, or all),
    given the apps' ``environments`` as (id, app id, name). Two queries (three with an
    environment filter).

    Precedence is only known in Python, so every matching release of the apps is ranked, but
    on the four columns that takes."""
    matching = Release.objects.filter(app__in=app_ids)
    if filters.prereleases != "include":
        matching = matching.filter(is_prerelease=filters.prereleases == "only")
    if filters.deployable:
        matching = matching.filter(RELEASE_DEPLOYABLE)
    by_app: dict[int, list] = {app_id: [] for app_id in app_ids}
    for ranked in matching.values_list("pk", "app_id", "version", "validation", named=True):
        by_app[ranked.app_id].append(ranked)
    ran = Deploy.objects.filter(
        state__in=(Deploy.State.SUCCEEDED, Deploy.State.FAILED), release__isnull=False
    ).order_by()  # the default ordering would make every deploy distinct
    # (release, app) pairs that ran successfully on the app's environment of the name the
    # filter asks for.
    ran_there: set[tuple[int, int]] = set()
    if filters.environment:
        named = {
            env_id: app_id for env_id, app_id, name in environments if name == filters.environment
        }
        ran_there = {
            (release_id, named[env_id])
            for release_id, env_id in ran.filter(
                environment__in=list(named), state=Deploy.State.SUCCEEDED
            )
            .values_list("release_id", "environment_id")
            .distinct()
        }
    shown: dict[int, list[int]] = {}
    hidden: dict[int, int] = {}
    for app_id in app_ids:
        ranked = [
            release.pk
            for release in _ordered(by_app[app_id])
            if not filters.environment or (release.pk, app_id) in ran_there
        ]
        shown[app_id] = ranked if newest is None else ranked[:newest]
        hidden[app_id] = len(ranked) - len(shown[app_id])
    # How the releases shown went: their own deploys, not every deploy of the apps. Those on
    # other environments (previews) are read too, and never asked for.
    outcomes: dict[tuple[int, int], str] = {}
    for release_id, env_id, state in (
        ran.filter(release__in=[pk for ids in shown.values() for pk in ids])
        .values_list("release_id", "environment_id", "state")
        .distinct()
    ):
        if outcomes.get((release_id, env_id)) != Deploy.State.SUCCEEDED:
            outcomes[release_id, env_id] = state
    return Ranking(shown=shown, hidden=hidden, outcomes=outcomes)


def releases_by_app(
    *, apps: list[App], filters: ReleaseFilters | None = None, newest: int | None = None
) -> list[AppReleases]:
    """The releases of ``apps`` (the ``newest`` matching ones of each, or all), newest first
    by precedence, with where each is live, where it was ever deployed and how it went on each
    environment (its pipeline), as models (for the releases API; the Releases page reads
    ``release_tables``). Four queries (five with an environment filter) whatever the number
    of apps and releases; whole rows are loaded for the releases shown only."""
    environments = list(
        Environment.objects.filter(app__in=apps)
        .exclude(kind=Environment.Kind.PREVIEW)
        .select_related("current_release")
        .order_by("kind", "name")
    )
    ranking = _rank(
        app_ids=[app.pk for app in apps],
        environments=[(env.pk, env.app_id, env.name) for env in environments],
        filters=filters or ReleaseFilters(),
        newest=newest,
    )
    whole = (
        Release.objects.select_related("bad_marked_by")
        # The API does not show these (a release's own page does).
        .defer("changelog", "assets", "ci_checks")
        .in_bulk([pk for shown in ranking.shown.values() for pk in shown])
    )
    result = []
    for app in apps:
        app_envs = [env for env in environments if env.app_id == app.pk]
        order = pipeline_order(app_envs)
        rows = []
        for pk in ranking.shown[app.pk]:
            release = whole.get(pk)
            if release is None:  # deleted (in the admin) since it was ranked
                continue
            release.app = app  # the app is known: no join per release
            pipeline = [
                Stage(environment=env, outcome=ranking.outcome(release.pk, env.pk)) for env in order
            ]
            rows.append(
                ReleaseRow(
                    release=release,
                    live_in=[env for env in app_envs if env.current_release_id == release.pk],
                    deployed_to={s.environment.name for s in pipeline if s.outcome == "succeeded"},
                    pipeline=pipeline,
                )
            )
        result.append(
            AppReleases(app=app, environments=app_envs, rows=rows, hidden=ranking.hidden[app.pk])
        )
    return result


class LiveEnvironment(NamedTuple):
    """A long-lived environment as the Releases page shows it."""

    id: int
    app_id: int
    name: str
    promotion_position: int | None
    current_release_id: int | None
    live_tag: str | None  # the tag of the release live there


E = TypeVar("E", Environment, LiveEnvironment)


@dataclass(frozen=True)
class ReleaseLine:
    """One release's row of the Releases page, as plain values."""

    id: int
    tag: str
    is_prerelease: bool
    is_bad: bool
    deleted_on_github: bool
    is_deployable: bool
    blockers: list[str]
    validation: str
    published_at: datetime | None
    commit_sha: str
    pipeline: list[tuple[str, str]]  # (environment name, outcome) in the promotion order
    live_in: list[str]  # the names of the environments it is live in


@dataclass(frozen=True)
class AppReleaseLines:
    app: App
    environments: list[LiveEnvironment]
    rows: list[ReleaseLine]
    hidden: int  # matching releases left out (older than the newest shown)


def release_tables(
    *, apps: list[App], filters: ReleaseFilters, newest: int | None
) -> list[AppReleaseLines]:
    """What the Releases page shows of ``apps``: what ``releases_by_app`` reads, as plain
    values (model instances of the wide environments and releases cost more than the rest of
    the page). Four queries (five with an environment filter) whatever the number of apps
    and releases."""
    environments = [
        LiveEnvironment(*row)
        for row in Environment.objects.filter(app__in=apps)
        .exclude(kind=Environment.Kind.PREVIEW)
        .order_by("kind", "name")
        .values_list(
            "id",
            "app_id",
            "name",
            "promotion_position",
            "current_release_id",
            "current_release__tag",
        )
    ]
    ranking = _rank(
        app_ids=[app.pk for app in apps],
        environments=[(env.id, env.app_id, env.name) for env in environments],
        filters=filters,
        newest=newest,
    )
    rows = {
        row.id: row
        for row in Release.objects.filter(
            pk__in=[pk for shown in ranking.shown.values() for pk in shown]
        )
        .annotate(deployable=ExpressionWrapper(RELEASE_DEPLOYABLE, output_field=BooleanField()))
        .order_by()
        .values_list(
            "id",
            "tag",
            "is_prerelease",
            "commit_sha",
            "validation",
            "validation_results",
            "published_at",
            "deleted_on_github_at",
            "bad_marked_at",
            "bad_marked_by__username",
            "bad_reason",
            "deployable",
            named=True,
        )
    }
    result = []
    for app in apps:
        app_envs = [env for env in environments if env.app_id == app.pk]
        order = pipeline_order(app_envs)
        lines = []
        for pk in ranking.shown[app.pk]:
            row = rows.get(pk)
            if row is None:  # deleted (in the admin) since it was ranked
                continue
            lines.append(
                ReleaseLine(
                    id=pk,
                    tag=row.tag,
                    is_prerelease=row.is_prerelease,
                    is_bad=row.bad_marked_at is not None,
                    deleted_on_github=row.deleted_on_github_at is not None,
                    is_deployable=row.deployable,
                    blockers=blockers_of(
                        deleted_on_github_at=row.deleted_on_github_at,
                        bad_marked_at=row.bad_marked_at,
                        bad_marked_by=row.bad_marked_by__username,
                        bad_reason=row.bad_reason,
                        validation=row.validation,
                        validation_results=row.validation_results,
                    ),
                    validation=row.validation,
                    published_at=row.published_at,
                    commit_sha=row.commit_sha,
                    pipeline=[(env.name, ranking.outcome(pk, env.id)) for env in order],
                    live_in=[env.name for env in app_envs if env.current_release_id == pk],
                )
            )
        result.append(
            AppReleaseLines(
                app=app, environments=app_envs, rows=lines, hidden=ranking.hidden[app.pk]
            )
        )
    return result


def pipeline_order(environments: list[E]) -> list[E]:
    """Environments as a release goes through them: the promotion order first, then the rest by
    name."""
    return sorted(
        environments,
        key=lambda env: (env.promotion_position is None, env.promotion_position or 0, env.name),
    )


def release_get(*, pk: int) -> Release:
    return get_object_or_404(Release.objects.select_related("app", "bad_marked_by"), pk=pk)


def release_deploy_history(*, release: Release) -> QuerySet[Deploy]:
    return (
        Deploy.objects.filter(release=release)
        .select_related("environment", "requested_by")
        # What the release page's history shows: not the rest of the wide deploy and
        # environment rows.
        .only(
            "kind",
            "state",
            "health_verified",
            "health_summary",
            "requested_by_system",
            "created_at",
            "environment__name",
            "requested_by__username",
        )
        .order_by("-created_at", "-id")
    )


# --- rollback targets ------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackTarget:
    release: Release
    last_live_at: datetime | None  # when it last stopped being live (None: it never did)
    blockers: tuple[str, ...]

    @property
    def eligible(self) -> bool:
        return not self.blockers


@dataclass
class RollbackChoices:
    environment: Environment
    current: Release | None
    targets: list[RollbackTarget]
    archived: list[RollbackTarget]

    @property
    def last_healthy(self) -> Release | None:
        """The most recent release that was live and healthy here and may be rolled back to:
        the one an emergency rollback returns to."""
        return next((t.release for t in self.targets if t.eligible), None)


def live_healthy_versions(*, environment: Environment) -> list[str]:
    """Versions that were live and healthy in ``environment``, most recent first."""
    rows = (
        Deploy.objects.filter(
            environment=environment,
            state=Deploy.State.SUCCEEDED,
            health_verified=True,
            release__isnull=False,
        )
        .order_by("-finished_at", "-id")
        .values_list("release__version", flat=True)
    )
    return list(dict.fromkeys(rows))


def rollback_choices(*, environment: Environment) -> RollbackChoices:
    """The last N (app.rollback_targets_kept) releases that were live and healthy here, other
    than the current one, are rollback targets; older ones are archived. Each says when it was
    last live: when the deploy that replaced it finished. Three queries."""
    ran = list(
        Deploy.objects.filter(environment=environment, state=Deploy.State.SUCCEEDED)
        .select_related("release__bad_marked_by")
        .order_by("finished_at", "id")
    )
    return _rollback_choices_from(environment, ran)


def last_healthy_versions(*, environments: list[Environment], history: int) -> dict[int, str]:
    """The version of each environment's (by id) ``RollbackChoices.last_healthy`` ("" when
    there is none), judged from its newest ``history`` successful deploys only: for a page that
    names the newest target of every environment (the runbook), not for choosing among them.
    Two queries of plain values, whatever marks its releases carry. Each environment's app must
    be loaded (its ``rollback_targets_kept``)."""
    newest_first = Window(
        RowNumber(),
        partition_by=F("environment_id"),
        order_by=(F("finished_at").desc(), F("id").desc()),
    )
    ran: dict[int, list[int]] = {environment.pk: [] for environment in environments}
    for environment_id, release_id, health_verified in (
        Deploy.objects.filter(environment__in=environments, state=Deploy.State.SUCCEEDED)
        .alias(newness=newest_first)
        .filter(newness__lte=history)
        .order_by("environment_id", "-finished_at", "-id")
        .values_list("environment_id", "release_id", "health_verified")
    ):
        if release_id is not None and health_verified:
            ran[environment_id].append(release_id)
    # Their few releases apart: PostgreSQL misjudges how many rows the window keeps and would
    # join every release to them.
    eligible: dict[int, str] = {}
    for release_id, version, *marks in Release.objects.filter(
        pk__in={release_id for releases in ran.values() for release_id in releases}
    ).values_list(
        "id",
        "version",
        "deleted_on_github_at",
        "bad_marked_at",
        "bad_reason",
        "validation",
        "validation_results",
    ):
        deleted_on_github_at, bad_marked_at, bad_reason, validation, validation_results = marks
        blocked = blockers_of(
            deleted_on_github_at=deleted_on_github_at,
            bad_marked_at=bad_marked_at,
            bad_marked_by=None,  # only whether anything blocks it counts here, not the wording
            bad_reason=bad_reason,
            validation=validation,
            validation_results=validation_results,
        )
        if not blocked:
            eligible[release_id] = version
    versions = {}
    for environment in environments:
        # The targets (_rollback_choices_from): its distinct releases, newest first, but the
        # current one, the first rollback_targets_kept of them; the first eligible one.
        targets = [
            release_id
            for release_id in dict.fromkeys(ran[environment.pk])
            if release_id != environment.current_release_id
        ][: environment.app.rollback_targets_kept]
        versions[environment.pk] = next(
            (eligible[release_id] for release_id in targets if release_id in eligible), ""
        )
    return versions


def _rollback_choices_from(environment: Environment, ran: list[Deploy]) -> RollbackChoices:
    """The choices given the environment's successful deploys, oldest first."""
    # When what each deploy put live stopped being live: the finish of the next deploy that
    # put something else there (a redeploy of the same image changes nothing).
    stopped: dict[int, datetime] = {}
    still_live: list[Deploy] = []
    for deploy in ran:
        if still_live and deploy.image_ref != still_live[-1].image_ref:
            stopped.update((earlier.pk, deploy.finished_at) for earlier in still_live)
            still_live = []
        still_live.append(deploy)
    seen: dict[int, RollbackTarget] = {}
    for deploy in reversed(ran):
        release = deploy.release
        if (
            release is None
            or not deploy.health_verified
            or release.pk in seen
            or release.pk == environment.current_release_id
        ):
            continue
        seen[release.pk] = RollbackTarget(
            release=release,
            last_live_at=stopped.get(deploy.pk),
            blockers=tuple(release_blockers(release)),
        )
    ordered = list(seen.values())
    kept = environment.app.rollback_targets_kept
    return RollbackChoices(
        environment=environment,
        current=environment.current_release,
        targets=ordered[:kept],
        archived=ordered[kept:],
    )


def environment_get(*, pk: int) -> Environment:
    return get_object_or_404(
        Environment.objects.select_related("app", "current_release", "locked_by"), pk=pk
    )


def rollback_targets_by_environment(*, release: Release) -> list[Environment]:
    """The environments of the release's app where it is currently a rollback target that
    can be chosen (a release marked bad or otherwise blocked is not offered). Only the
    environments where it was live and healthy, and is not live now, can have it as a target:
    their rollback choices are read, not every environment's."""
    if release_blockers(release):
        return []
    environments = (
        Environment.objects.filter(
            app=release.app,
            deploys__release=release,
            deploys__state=Deploy.State.SUCCEEDED,
            deploys__health_verified=True,
        )
        .exclude(kind=Environment.Kind.PREVIEW)
        .exclude(current_release=release)
        .select_related("app")
        .distinct()
    )
    return [
        env
        for env in environments
        if any(
            t.release.pk == release.pk and t.eligible
            for t in rollback_choices(environment=env).targets
        )
    ]


# --- rollbacks history -----------------------------------------------------------------------


def rollback_apps_page(*, environment_id: int | None = None, page: str | int | None = 1) -> Page:
    """A page of app ids, apps by name, for the Rollbacks page (only ``environment_id``'s app if
    given); a page number out of range shows the last page, one that is not a number the first."""
    apps = App.objects.order_by("name", "id")
    if environment_id:
        apps = apps.filter(environments__id=environment_id)
    return Paginator(apps.values_list("id", flat=True), ROLLBACK_APPS_PER_PAGE).get_page(page)


@dataclass(frozen=True)
class RollbackRow:
    """One row of the Rollbacks page's history, as plain values."""

    id: int
    kind: str
    state: str
    fast_path: bool
    app_name: str
    environment_name: str
    previous: str  # the release (tag) or image rolled away from
    target: str  # the release (tag) or image rolled back to
    requester: str
    reason: str
    error: str
    health_verified: bool | None
    health_summary: str
    created_at: datetime
    hold: RollbackHold | None  # Deploy.rollback_hold

    @property
    def is_terminal(self) -> bool:
        return self.state in Deploy.TERMINAL_STATES


def rollback_list(
    *, app_ids: list[int], environment_id: int | None = None, limit: int = 200
) -> list[RollbackRow]:
    """The newest rollbacks of the apps ``app_ids``, grouped by app and environment; up to
    200 rows, read as plain values (model instances cost more than the rest of the page)."""
    order = ("environment__app__name", "environment__name", "-created_at", "-id")
    deploys = Deploy.objects.filter(kind__in=ROLLBACK_KINDS, environment__app_id__in=app_ids)
    if environment_id:
        deploys = deploys.filter(environment_id=environment_id)
    # The page's ids first: over the narrow rows PostgreSQL sorts every rollback at once,
    # where over the wide ones it walks the apps by name, rescanning the rollbacks for each.
    shown = deploys.order_by(*order).values("id")[:limit]
    rows = (
        Deploy.objects.filter(id__in=shown)
        .order_by(*order)
        .values_list(
            "id",
            "kind",
            "state",
            "fast_path",
            "environment__app__name",
            "environment__name",
            "previous_release__tag",
            "previous_image_ref",
            "release__tag",
            "image_ref",
            "requested_by__username",
            "requested_by_system",
            "reason",
            "error",
            "health_verified",
            "health_summary",
            "created_at",
            "started_at",
        )
    )
    return [
        RollbackRow(
            id=pk,
            kind=kind,
            state=state,
            fast_path=fast_path,
            app_name=app_name,
            environment_name=environment_name,
            previous=previous_tag or previous_image,
            target=tag or image,
            requester=username or system,
            reason=reason,
            error=error,
            health_verified=health_verified,
            health_summary=health_summary,
            created_at=created_at,
            hold=RollbackHold.of(
                environment=environment_name,
                marks_bad=previous_tag or "",
                state=state,
                started=started_at is not None,
            )
            if kind == Deploy.Kind.ROLLBACK
            else None,
        )
        for (
            pk,
            kind,
            state,
            fast_path,
            app_name,
            environment_name,
            previous_tag,
            previous_image,
            tag,
            image,
            username,
            system,
            reason,
            error,
            health_verified,
            health_summary,
            created_at,
            started_at,
        ) in rows
    ]


@dataclass(frozen=True)
class RollbackEnvironment:
    """One row of the Rollbacks page's environments table."""

    id: int
    app_name: str
    name: str
    live: str  # the live release's tag or image, "" when nothing is
    health: str
    live_bad_reason: str | None  # None unless the live release is marked bad
    locked: bool
    locked_by: str | None
    lock_reason: str


def rollback_environments(*, app_ids: list[int]) -> list[RollbackEnvironment]:
    """The long-lived environments of the apps ``app_ids`` by app, as plain values."""
    rows = (
        Environment.objects.filter(app_id__in=app_ids)
        .exclude(kind=Environment.Kind.PREVIEW)
        .order_by("app__name", "kind", "name")
        .values_list(
            "id",
            "app__name",
            "name",
            "current_release__tag",
            "current_image_ref",
            "health",
            "current_release__bad_marked_at",
            "current_release__bad_reason",
            "locked_at",
            "locked_by__username",
            "lock_reason",
        )
    )
    return [
        RollbackEnvironment(
            id=pk,
            app_name=app_name,
            name=name,
            live=tag or image_ref,
            health=health,
            live_bad_reason=bad_reason if bad_marked_at else None,
            locked=locked_at is not None,
            locked_by=locked_by,
            lock_reason=lock_reason,
        )
        for (
            pk,
            app_name,
            name,
            tag,
            image_ref,
            health,
            bad_marked_at,
            bad_reason,
            locked_at,
            locked_by,
            lock_reason,
        ) in rows
    ]
