"""Builds: the image CI built for one commit. Previews deploy builds once their PR head has one.

CI registers builds through ``POST /api/v1/builds``; in sandbox mode, where no CI exists, a
build is simulated for a PR head the first time a preview needs it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from approvals.audit import record
from deployments import task_names
from deployments.models import App, Build, Preview
from hotdash import queue
from hotdash.errors import Refused

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _image_reference_re() -> re.Pattern[str]:
    """The OCI distribution reference grammar (distribution/reference): an optional registry
    host (a domain name or a bracketed IPv6 address, with a port), lower-case path components
    joined by ``.``, ``_``, ``__`` or dashes, then an optional tag and an optional digest."""
    alphanumeric = r"[a-z0-9]+"
    separator = r"(?:[._]|__|-+)"
    component = rf"{alphanumeric}(?:{separator}{alphanumeric})*"
    domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    host = rf"(?:{domain_component}(?:\.{domain_component})*|\[[a-fA-F0-9:]+\])"
    name = rf"(?:{host}(?::[0-9]+)?/)?{component}(?:/{component})*"
    tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
    digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
    # Group 1 is the name. Plain syntax, so the schema publishes the same pattern.
    return re.compile(rf"({name})(?::{tag})?(?:@{digest})?")


IMAGE_REFERENCE_RE = _image_reference_re()
IMAGE_NAME_MAX = 255  # the grammar's limit on the name part
IMAGE_REF_MAX = 300


def image_reference_valid(image_ref: str) -> bool:
    if len(image_ref) > IMAGE_REF_MAX:  # first: the pattern then runs on a bounded text
        return False
    match = IMAGE_REFERENCE_RE.fullmatch(image_ref)
    return match is not None and len(match.group(1)) <= IMAGE_NAME_MAX


def build_register(
    *,
    app: App,
    commit_sha: str,
    image_ref: str,
    image_digest: str,
    user: Any = None,
    ip: str | None = None,
) -> tuple[Build, bool]:
    """Register the image CI built for a commit. Returns (build, created).

    Repeating the same registration is a no-op; a different image for a commit that already
    has one is refused (``build_conflict``): a commit's build is immutable once deployed.
    On commit, every open preview whose PR head is that commit deploys it.
    """
    commit_sha = commit_sha.strip().lower()
    image_ref = image_ref.strip()
    image_digest = image_digest.strip().lower()
    if not SHA_RE.match(commit_sha):
        raise Refused("invalid_sha", "sha must be a full 40-character hex commit SHA.")
    if not image_reference_valid(image_ref):
        raise Refused(
            "invalid_image",
            f"image must be an OCI image reference, e.g. registry.fly.io/app:tag "
            f"(≤ {IMAGE_REF_MAX} characters).",
        )
    if not DIGEST_RE.match(image_digest):
        raise Refused("invalid_digest", "digest must look like sha256:<64 hex characters>.")
    existing = Build.objects.filter(app=app, commit_sha=commit_sha).first()
    if existing is not None:
        return _same_or_conflict(existing, image_ref, image_digest), False
    try:
        with transaction.atomic():
            build = Build.objects.create(
                app=app,
                commit_sha=commit_sha,
                image_ref=image_ref,
                image_digest=image_digest,
                registered_by=user,
            )
            _audit(build=build, actor=user, ip=ip, simulated=False)
            transaction.on_commit(lambda: build_ready_send(build_pk=build.pk))
    except IntegrityError:  # a concurrent registration of the same commit won
        existing = Build.objects.get(app=app, commit_sha=commit_sha)
        return _same_or_conflict(existing, image_ref, image_digest), False
    return build, True


def _same_or_conflict(existing: Build, image_ref: str, image_digest: str) -> Build:
    if (existing.image_ref, existing.image_digest) != (image_ref, image_digest):
        raise Refused(
            "build_conflict",
            f"{existing.commit_sha[:7]} already has a build ({existing.image_ref} "
            f"{existing.image_digest[:19]}…); a commit's build cannot change.",
        )
    return existing


def _audit(*, build: Build, actor: Any, ip: str | None, simulated: bool) -> None:
    record(
        actor=actor if actor is not None else "github",
        verb="build.registered",
        target=build,
        app=build.app.name,
        data={
            "commit": build.commit_sha,
            "image_ref": build.image_ref,
            "image_digest": build.image_digest,
            "simulated": simulated,
        },
        ip=ip,
    )


def build_ready_send(*, build_pk: int) -> None:
    """Ask a worker to deploy the build's preview; if the message is lost, the next push or a
    redeploy picks the build up."""
    queue.send(task_names.PREVIEW_BUILD_READY, build_pk)


def simulated_image(*, app: App, commit_sha: str, pr_number: int) -> tuple[str, str]:
    """The image a sandbox "CI" would push for a PR head, and its digest (computed the way the
    sandbox registry computes digests for images it has not been told about)."""
    image = f"registry.fly.io/{app.name}:pr-{pr_number}-{commit_sha[:7]}"
    return image, "sha256:" + hashlib.sha256(f"image {image}".encode()).hexdigest()


def build_simulate(*, app: App, commit_sha: str, pr_number: int) -> Build:
    """Sandbox mode only: stand in for CI and register the PR head's build (no notification;
    the caller deploys it)."""
    if not settings.SANDBOX_MODE:
        raise RuntimeError("builds are simulated only in sandbox mode")
    image, digest = simulated_image(app=app, commit_sha=commit_sha, pr_number=pr_number)
    with transaction.atomic():
        build, created = Build.objects.get_or_create(
            app=app, commit_sha=commit_sha, defaults={"image_ref": image, "image_digest": digest}
        )
        if created:
            _audit(build=build, actor="system", ip=None, simulated=True)
    return build


def build_handle_push(*, app: App, payload: dict[str, Any]) -> str:
    """A ``push`` delivery in sandbox mode: a push to a previewed branch simulates CI building
    its new head (real builds come from CI through the API)."""
    ref = payload.get("ref") or ""
    after = payload.get("after") or ""
    if payload.get("deleted") or not ref.startswith("refs/heads/") or not SHA_RE.match(after):
        return f"push to {ref or 'an unknown ref'}: nothing to build"
    branch = ref.removeprefix("refs/heads/")
    previews = Preview.objects.filter(app=app, branch=branch).exclude(state=Preview.State.DESTROYED)
    built = []
    for preview in previews:
        build = build_simulate(app=app, commit_sha=after, pr_number=preview.pr_number)
        transaction.on_commit(lambda pk=build.pk: build_ready_send(build_pk=pk))
        built.append(build.image_ref)
    return f"push to {branch}: simulated {', '.join(built)}" if built else f"push to {branch}"
