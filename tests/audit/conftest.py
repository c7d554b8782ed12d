from __future__ import annotations

import pytest

from approvals.audit import record


@pytest.fixture
def events(db, viewer):
    """A small mixed history: deploy and environment verbs across two apps."""

    def make(**kwargs):
        return record(**{"actor": "system", **kwargs})

    return [
        make(
            verb="deploy.requested",
            app="shop",
            environment="production",
            data={"reason": "Fix the Checkout button"},
        ),
        make(
            verb="deploy.approved",
            actor=viewer,
            app="shop",
            environment="production",
            data={"comment": "looks good"},
        ),
        make(
            verb="environment.locked",
            app="shop",
            environment="production",
            data={"reason": "incident 42"},
        ),
        make(
            verb="deploy.requested", app="blog", environment="staging", data={"reason": "new theme"}
        ),
        make(verb="deployment.noise", app="blog", environment="staging"),
    ]
