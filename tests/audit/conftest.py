from __future__ import annotations

import pytest

from approvals.audit import record


@pytest.fixture(autouse=True)
def anchor_dir(settings, tmp_path):
    """Each test's own AUDIT_ANCHOR_DIR: anchors outlive the test database, so a shared one
    would put the next test's fresh chain behind the last test's anchor."""
    settings.AUDIT_ANCHOR_DIR = tmp_path / "anchors"
    return settings.AUDIT_ANCHOR_DIR


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
