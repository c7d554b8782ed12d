"""The promotion rule of an environment, read from the deploy history: whether a release has
run long enough, healthy, on the environment before it in its app's promotion order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deployments.models import Deploy, Environment, Release

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
    minutes = environment.promotion_min_healthy_minutes
    previous = promotion_previous(environment=environment) if minutes is not None else None
    if previous is None:
        return None
    history = Deploy.objects.filter(environment=previous).select_related("release")
    rehearsal = (
        history.filter(
            kind__in=IMAGE_KINDS,
            state=Deploy.State.SUCCEEDED,
            image_digest=release.image_digest,
            finished_at__isnull=False,
        )
        .order_by("-finished_at", "-id")
        .first()
    )
    broken_by = _trouble_since(previous, rehearsal.finished_at) if rehearsal else None
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
    )
    return Promotion(
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


def _minutes_between(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() // 60))


def _trouble_since(environment: Environment, since: datetime) -> Deploy | None:
    """The first deploy on ``environment`` after ``since`` that ended its health: one that
    finished failed, or a rollback that started."""
    history = Deploy.objects.filter(environment=environment)
    failed = history.filter(state=Deploy.State.FAILED, finished_at__gt=since)
    rolled_back = history.filter(kind__in=ROLLBACK_KINDS, started_at__gt=since)
    return (failed | rolled_back).order_by("created_at", "id").first()


def _wording(
    *,
    environment: Environment,
    previous: Environment,
    release: Release,
    minutes: int,
    rehearsal: Deploy | None,
    broken_by: Deploy | None,
    healthy: int,
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
        other = (
            Deploy.objects.filter(
                environment=previous, release=release, state=Deploy.State.SUCCEEDED
            )
            .exclude(image_digest=release.image_digest)
            .exists()
        )
        if other:
            state = f"{tag} ran on {there} as another image, not {release.image_digest[:19]}…"
            return state + ".", f"{rule}: {state}; deploy this image to {there} first."
        state = f"{tag} never ran on {there}"
        return state + ".", f"{rule}: {state}; deploy it to {there} first."
    succeeded = f"{tag} succeeded on {there} {healthy} min ago"
    if broken_by is not None:
        what = "was rolled back" if broken_by.kind in ROLLBACK_KINDS else "failed"
        state = f"{succeeded}, then deploy #{broken_by.pk} {what} there"
        return state + ".", f"{rule}: {state}; deploy {tag} to {there} again."
    state = f"{succeeded}, healthy since."
    return state, f"{rule}: {tag} has run healthy there for {healthy} of {minutes} minutes; " + (
        f"wait {minutes - healthy} more."
    )
