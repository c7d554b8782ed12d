"""Schemathesis against the served OpenAPI schema, in-process through Django's WSGI app.

Every operation is fuzzed (the schema's examples, boundary and negative cases, then generated
ones) as a deployer and as an approver; the stateful phase then follows the schema's links
(request a deploy, read it, decide it, cancel it) with a deployer requesting and an approver
deciding. All in the seeded demo world, in a database the run may litter. Any 5xx, any status,
body, header or content type the schema does not document fails the test.

``FUZZ_MAX_EXAMPLES`` sets the examples per operation and the stateful scenarios (default
25)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import settings
from hypothesis import strategies as st

from approvals import policy
from deployments.services.tokens import api_token_create
from tests.fuzz import FUZZ_SETTINGS

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "allow_header_conformance",
    "ensure_resource_availability",
]
# Releases of the demo world that can really be requested (production is approval-gated).
DEMO_TARGETS = st.sampled_from(
    [
        {"app": "hot-dash", "environment": environment, "version": "1.3.0"}
        for environment in ("production", "staging")
    ]
)

# Rollback targets that really were live and healthy in the demo world.
ROLLBACK_TARGETS = st.sampled_from(
    [
        {"app": "hot-dash", "environment": "staging", "version": "1.2.0"},
        {"app": "hot-dash", "environment": "production", "version": "1.1.1", "confirm": "hot-dash"},
    ]
)
TARGETS = {"POST /deploys": DEMO_TARGETS, "POST /rollbacks": ROLLBACK_TARGETS}

# Loaded once at collection: serving the schema reads no data.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
schema.config.checks.update(included_check_names=CHECKS)


@schema.hook
def flatmap_body(context, body):
    """Deploy and rollback requests sometimes name a real app, environment and release, so
    the happy path and everything linked from it (reads, decisions, cancels) is reached too."""
    targets = TARGETS.get(context.operation.label)
    if targets is None or not isinstance(body, dict):
        return st.just(body)
    return st.one_of(st.just(body), targets.map(lambda target: {**body, **target}))


pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]


@pytest.fixture
def tokens(demo, sandbox, make_user, test_connection) -> dict[str, dict[str, str]]:
    """An Authorization header per role, in the seeded demo world."""
    headers = {}
    for role in (policy.DEPLOYER, policy.APPROVER):
        user = make_user(f"fuzz-{role}", role)
        headers[role] = {"Authorization": f"Bearer {api_token_create(user=user, name='fuzz')[1]}"}
    return headers


@pytest.fixture(params=[policy.DEPLOYER, policy.APPROVER])
def authorization(request, tokens) -> dict[str, str]:
    return tokens[request.param]


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation(case, authorization):
    case.call_and_validate(headers=authorization)


def test_stateful(tokens):
    class Machine(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            deciding = case.operation.label == "POST /deploys/{id}/decisions"
            return {"headers": tokens[policy.APPROVER if deciding else policy.DEPLOYER]}

    Machine.run(settings=settings(FUZZ_SETTINGS, stateful_step_count=8))
