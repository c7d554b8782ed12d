"""The promotion rule of an environment, read from the deploy history: whether a release has
run long enough, healthy, on the environment before it in its app's promotion order."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from deployments.models import Deploy, Environment, Release
from deployments.selectors.releases import release_blockers

# Deploy kinds that put a release's image on the machines.
IMAGE_KINDS = (Deploy.Kind.DEPLOY, Deploy.Kind.ROLLBACK, Deploy.Kind.AUTO_ROLLBACK)
ROLLBACK_KINDS = (Deploy.Kind.ROLLBACK, Deploy.Kind.AUTO_ROLLBACK)


@dataclass(frozen=True)
class Promotion:
    """The rule ``environment`` sets for ``release``, and how the history meets it.

    ``rehearsal`` is the deploy on ``previous`` that counts (None: the release never succeeded
    there), ``broken_by`` the later deploy that ended its health; ``state`` says it in one
    sentence, ``missing`` (empty when ``met``) what is still missing."""

    environment: Environment
    previous: Environment
    release: Release
    min_minutes: int
    rehearsal: Deploy | None
    broken_by: Deploy | None
    healthy_minutes: int
    met: bool
    state: str
    missing: str

    @property
    def healthy_since(self) -> datetime | None:
        return self.rehearsal.finished_at if self.rehearsal and not self.broken_by else None


def promotion_previous(*, environment: Environment) -> Environment | None:
    """The environment before ``environment`` in its app's promotion order, if any."""
    if environment.promotion_position is None:
        return None
    return (
        Environment.objects.filter(
            app_id=environment.app_id, promotion_position__lt=environment.promotion_position
        )
        .order_by("-promotion_position")
        .first()
    )


def promotion_next(*, environment: Environment) -> Environment | None:
    """The environment after ``environment`` in its app's promotion order, if any."""
    if environment.promotion_position is None:
        return None
    return (
        Environment.objects.filter(
            app_id=environment.app_id, promotion_position__gt=environment.promotion_position
        )
        .order_by("promotion_position")
        .first()
    )


def promotion_check(
    *, environment: Environment, release: Release, now: datetime
) -> Promotion | None:
    """How ``release`` stands against the promotion rule of ``environment`` at ``now`` (None when
    the environment has no rule, or nothing comes before it in the order).

    The rule is met when the release's image digest was rehearsed on the previous environment:
    the latest deploy there that put this digest on the machines (a deploy or a rollback)
    succeeded at a moment T, no deploy there has finished failed and no rollback has started
    there since T ("healthy since T"), and at least ``promotion_min_healthy_minutes`` minutes
    have passed since T (exactly N minutes is enough). A later successful deploy of another
    release does not undo the rehearsal; a failure or a rollback there does, until the digest
    succeeds there again. The same tag built into another image does not count: only the digest.
    """
    return promotion_checks(environment=environment, releases=[release], now=now).get(release.pk)


def promotion_checks(
    *, environment: Environment, releases: list[Release], now: datetime
) -> dict[int, Promotion]:
    """:func:`promotion_check` for many releases of the environment's app, by release id (empty
    when there is no rule). At most four queries whatever the number of releases."""
    minutes = environment.promotion_min_healthy_minutes
    previous = promotion_previous(environment=environment) if minutes is not None else None
    if previous is None or not releases:
        return {}
    history = Deploy.objects.filter(environment=previous)
    rehearsals: dict[str, Deploy] = {}
    for deploy in (
        history.filter(
            kind__in=IMAGE_KINDS,
            state=Deploy.State.SUCCEEDED,
            image_digest__in={release.image_digest for release in releases},
            finished_at__isnull=False,
        )
        .select_related("release")
        .order_by("-finished_at", "-id")
    ):
        rehearsals.setdefault(deploy.image_digest, deploy)
    trouble = _trouble_since(
        previous, min((d.finished_at for d in rehearsals.values()), default=None)
    )
    unrehearsed = [r for r in releases if r.image_digest not in rehearsals]
    ran_as: dict[int, set[str]] = defaultdict(set)  # release id -> digests that succeeded
    if unrehearsed:
        for release_id, digest in history.filter(
            release__in=unrehearsed, state=Deploy.State.SUCCEEDED
        ).values_list("release_id", "image_digest"):
            ran_as[release_id].add(digest)
    result = {}
    for release in releases:
        rehearsal = rehearsals.get(release.image_digest)
        broken_by = (
            next((d for d in trouble if _ends_health(d, rehearsal.finished_at)), None)
            if rehearsal
            else None
        )
        healthy = _minutes_between(rehearsal.finished_at, now) if rehearsal else 0
        met = rehearsal is not None and broken_by is None and healthy >= minutes
        state, missing = _wording(
            environment=environment,
            previous=previous,
            release=release,
            minutes=minutes,
            rehearsal=rehearsal,
            broken_by=broken_by,
            healthy=healthy,
            other_image=bool(ran_as[release.pk] - {release.image_digest}),
        )
        result[release.pk] = Promotion(
            environment=environment,
            previous=previous,
            release=release,
            min_minutes=minutes,
            rehearsal=rehearsal,
            broken_by=broken_by,
            healthy_minutes=healthy,
            met=met,
            state=state,
            missing="" if met else missing,
        )
    return result


def _minutes_between(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() // 60))


def _trouble_since(environment: Environment, since: datetime | None) -> list[Deploy]:
    """The deploys on ``environment`` after ``since`` that may have ended its health (see
    :func:`_ends_health`), oldest first; none without a moment to look from."""
    if since is None:
        return []
    history = Deploy.objects.filter(environment=environment)
    failed = history.filter(state=Deploy.State.FAILED, finished_at__gt=since)
    rolled_back = history.filter(kind__in=ROLLBACK_KINDS, started_at__gt=since)
    return list((failed | rolled_back).order_by("created_at", "id"))


def _ends_health(deploy: Deploy, since: datetime) -> bool:
    """Whether ``deploy`` ended the health of its environment after ``since``: it finished
    failed, or it is a rollback that started."""
    if deploy.state == Deploy.State.FAILED and deploy.finished_at > since:
        return True
    return (
        deploy.kind in ROLLBACK_KINDS
        and deploy.started_at is not None
        and (deploy.started_at > since)
    )


def _wording(
    *,
    environment: Environment,
    previous: Environment,
    release: Release,
    minutes: int,
    rehearsal: Deploy | None,
    broken_by: Deploy | None,
    healthy: int,
    other_image: bool,
) -> tuple[str, str]:
    """The rule's state and what is missing, as sentences."""
    tag, there = release.tag, previous.name
    rule = (
        f"{environment.name} takes a release only after it ran healthy on {there} for "
        f"{minutes} minute{'s' if minutes != 1 else ''}"
        if minutes
        else f"{environment.name} takes a release only after it succeeded on {there}"
    )
    if rehearsal is None:
        if other_image:
            state = f"{tag} ran on {there} as another image, not {release.image_digest[:19]}…"
            return state + ".", f"{rule}: {state}; deploy this image to {there} first."
        state = f"{tag} never ran on {there}"
        return state + ".", f"{rule}: {state}; deploy it to {there} first."
    succeeded = f"{tag} succeeded on {there} {_elapsed(healthy)} ago"
    if broken_by is not None:
        what = "was rolled back" if broken_by.kind in ROLLBACK_KINDS else "failed"
        state = f"{succeeded}, then deploy #{broken_by.pk} {what} there"
        return state + ".", f"{rule}: {state}; deploy {tag} to {there} again."
    state = f"{succeeded}, healthy since."
    return state, f"{rule}: {tag} has run healthy there for {healthy} of {minutes} minutes; " + (
        f"wait {minutes - healthy} more."
    )


def _elapsed(minutes: int) -> str:
    """Minutes for the first day (the rule counts minutes), then whole days."""
    if minutes < 24 * 60:
        return f"{minutes} min"
    days = minutes // (24 * 60)
    return f"{days} day{'s' if days != 1 else ''}"


@dataclass(frozen=True)
class PromoteOffer:
    """Promoting ``release`` to ``target``, the next environment of its order: ``refusal`` says
    in a sentence why not yet (empty: the request form may be opened with it)."""

    release: Release
    target: Environment
    refusal: str

    @property
    def allowed(self) -> bool:
        return not self.refusal


def promote_offer(*, release: Release, target: Environment, now: datetime) -> PromoteOffer:
    """Whether ``release`` may be promoted to ``target`` now: not when it is already live there,
    cannot be deployed at all, ``target`` is locked, or it does not meet ``target``'s promotion
    rule yet."""
    blockers = release_blockers(release)
    if target.current_release_id == release.pk:
        refusal = f"{release.tag} is already live on {target.name}."
    elif blockers:
        refusal = blockers[0]
    elif target.is_locked:
        refusal = f"{target.name} is locked: {target.lock_reason}"
    else:
        promotion = promotion_check(environment=target, release=release, now=now)
        refusal = promotion.missing if promotion else ""
    return PromoteOffer(release=release, target=target, refusal=refusal)


def deploy_promote_offer(*, deploy: Deploy, now: datetime) -> PromoteOffer | None:
    """The Promote offer of a successful deploy of a release, to the environment after its own
    in the order (None for other deploys, or at the end of the order)."""
    if (
        deploy.kind != Deploy.Kind.DEPLOY
        or deploy.state != Deploy.State.SUCCEEDED
        or deploy.release is None
    ):
        return None
    target = promotion_next(environment=deploy.environment)
    return promote_offer(release=deploy.release, target=target, now=now) if target else None


def release_promote_offers(
    *, release: Release, environments: list[Environment], now: datetime
) -> dict[int, PromoteOffer]:
    """The Promote offers of ``release`` to each of ``environments`` that comes after another
    in the order, by environment id."""
    return {
        environment.pk: promote_offer(release=release, target=environment, now=now)
        for environment in environments
        if promotion_previous(environment=environment) is not None
    }
