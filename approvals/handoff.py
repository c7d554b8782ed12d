"""What an approval decision hands to the deploys it gates, without approvals importing them.

Deployments depends on approvals (policy, audit, requests and decisions), never the other way:
``approvals.services`` sends these signals and ``deployments.receivers`` (connected in
``DeploymentsConfig.ready``) acts on them. Each is sent inside the transaction of the decision,
so what a receiver writes commits or rolls back with it, and a receiver's error reaches the
caller. Sending one that nobody receives is a configuration error, never a silent no-op.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

# deploy, actor: the gate is passed; queue the deploy (its run message goes out on commit).
deploy_approved = Signal()
# old, new, actor: approving ``new`` ended the older pending request of ``old``.
deploy_replaced = Signal()
# deploy, event, detail: tell the app's people what happened to the deploy's approval.
approval_announced = Signal()


def hand_off(signal: Signal, **facts: Any) -> None:
    if not signal.send(sender="approvals", **facts):
        raise ImproperlyConfigured(
            "nothing receives the approval hand-off: is deployments installed?"
        )
