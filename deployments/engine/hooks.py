"""The services the engine calls inside its own transactions.

The engine sits below the services layer: ``deployments.services.deploys`` is its entry point
and hands it these (``ENGINE_HOOKS``) rather than the engine importing services, which would
close a cycle back to that entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deployments.models import Deploy
from hotdash.errors import Refused


@dataclass(frozen=True)
class Hooks:
    gate_refusal: Callable[..., Refused | None]  # lock, freeze windows, promotion at the claim
    rollback_hold: Callable[..., None]  # a person's rollback, as it starts
    notify: Callable[..., Any]  # the app's outgoing webhooks
    plan_create: Callable[..., Any]  # an automatic rollback's steps
    release_mark_bad: Callable[..., Any]
    environment_lock: Callable[..., Any]
    queue: Callable[..., Deploy]  # an automatic rollback, once planned
    github_report: Callable[..., bool]  # a GitHub deployment status, into the outbox
