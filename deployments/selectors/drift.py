"""How an environment's live machines differ from its declared machine configuration."""

from __future__ import annotations

from dataclasses import dataclass

from deployments.engine.desired import Difference, declared_config, differences
from deployments.models import Environment
from hotdash.integrations.fly import Machine

GONE = ("destroying", "destroyed")


@dataclass(frozen=True)
class MachineDrift:
    machine: Machine
    differences: list[Difference]

    @property
    def drifted(self) -> bool:
        return bool(self.differences)


def machines_drift(*, environment: Environment, machines: list[Machine]) -> list[MachineDrift]:
    """Each machine (but those being destroyed) with every managed value of its config that
    differs from what the environment declares for the image it runs."""
    declared = declared_config(environment)
    return [
        MachineDrift(machine=machine, differences=differences(declared, machine.config))
        for machine in machines
        if machine.state not in GONE
    ]


def drift_summary(drift: list[MachineDrift]) -> dict[str, list[dict]]:
    """The drifted machines as stored on the environment: {id: [{field, declared, live}]}."""
    return {
        item.machine.id: [difference.as_dict() for difference in item.differences]
        for item in drift
        if item.drifted
    }
