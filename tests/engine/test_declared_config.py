"""The declared machine configuration's rules: model validation and database constraints."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from deployments.models import Environment


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"concurrency_soft_limit": 300, "concurrency_hard_limit": 250},
            "concurrency_soft_limit",
            "soft concurrency limit cannot be above the hard limit",
        ),
        ({"min_machines_running": 3}, "min_machines_running", "cannot be above the machine count"),
        ({"machine_cpus": 3}, "machine_cpus", "Fly offers 1, 2, 4, 8, 16 CPUs"),
        ({"machine_memory_mb": 1000}, "machine_memory_mb", "multiple of 256 MB"),
        ({"kill_timeout_seconds": 301}, "kill_timeout_seconds", "1 to 300 seconds"),
        ({"internal_port": 70000}, "internal_port", "between 1 and 65535"),
        ({"health_tcp_timeout_seconds": 0}, "health_tcp_timeout_seconds", "At least one second"),
    ],
)
def test_clean_explains_a_declared_config_fly_would_refuse(values, field, message):
    environment = Environment(kind="staging", machine_count=2, **values)
    with pytest.raises(ValidationError) as caught:
        environment.clean()
    assert message in " ".join(caught.value.message_dict[field])


def test_no_hard_limit_is_fine():
    Environment(kind="staging", concurrency_soft_limit=500, concurrency_hard_limit=None).clean()


@pytest.mark.parametrize(
    "values",
    [
        {"concurrency_soft_limit": 300, "concurrency_hard_limit": 250},
        {"min_machines_running": 5},
        {"kill_timeout_seconds": 0},
        {"internal_port": 0},
        {"machine_memory_mb": 128},
        {"health_http_interval_seconds": 0},
    ],
)
def test_the_database_refuses_it_too(demo, values):
    updated = Environment.objects.filter(name="staging")
    with pytest.raises(IntegrityError), transaction.atomic():
        updated.update(**values)
