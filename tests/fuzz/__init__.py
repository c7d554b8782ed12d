"""Fuzzing: schemathesis over the API schema, hypothesis over the pages (marker ``fuzz``)."""

import os

from hypothesis import HealthCheck, settings

# Examples per API operation, stateful scenarios, and examples per page.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # a slow answer is not a finding; the machine is shared
    derandomize=True,  # the same cases on every run: a failure is a finding, not a flake
    suppress_health_check=list(HealthCheck),  # the database grows as each run litters it
)
