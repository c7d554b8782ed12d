"""The drift check: every environment's machines compared with its declared config, and the
result kept on the environment, audited once per change (not at every check)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.audit import record
from deployments.models import Environment, Preview
from deployments.selectors.drift import drift_summary, machines_drift
from deployments.services.environments import environment_machines
from hotdash.integrations import APIError

log = logging.getLogger(__name__)


def drift_record(*, environment: Environment, drift: dict[str, list[dict]]) -> bool:
    """Keep ``drift`` (see Environment.drift) as the environment's latest check; True (and one
    audit event) when it differs from what the previous check found."""
    with transaction.atomic():
        env = Environment.objects.select_for_update().select_related("app").get(pk=environment.pk)
        now = timezone.now()
        changed = env.drift != drift
        env.drift_checked_at, env.drift_error = now, ""
        fields = ["drift_checked_at", "drift_error"]
        if changed:
            previous = sorted(env.drift)
            env.drift, env.drift_changed_at = drift, now
            fields += ["drift", "drift_changed_at"]
            record(
                actor="system",
                verb="environment.drift_detected" if drift else "environment.drift_cleared",
                target=env,
                scope=env,
                data={
                    "machines": {m: [d["field"] for d in found] for m, found in drift.items()},
                    "previously_drifted": previous,
                },
            )
        env.save(update_fields=fields)
    environment.refresh_from_db()
    return changed


def drift_check(*, environment: Environment) -> bool:
    """Read the environment's machines from Fly and record how they differ from the declared
    config; True when that changed. A Fly error is kept on the environment (drift_error) and
    leaves the last result as it was."""
    try:
        machines = environment_machines(environment=environment)
    except APIError as error:
        Environment.objects.filter(pk=environment.pk).update(
            drift_checked_at=timezone.now(), drift_error=f"Could not ask Fly: {error}"
        )
        log.warning("drift check of %s: %s", environment, error)
        return False
    drift = drift_summary(machines_drift(environment=environment, machines=machines))
    return drift_record(environment=environment, drift=drift)


def drift_check_all() -> list[int]:
    """Check every environment that runs something (not destroyed previews); returns the
    ids of those whose drift changed."""
    environments = (
        Environment.objects.exclude(current_image_ref="")
        .exclude(Q(kind=Environment.Kind.PREVIEW) & Q(preview__state=Preview.State.DESTROYED))
        .select_related("app")
        .order_by("pk")
    )
    return [env.pk for env in environments if drift_check(environment=env)]
