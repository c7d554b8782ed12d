"""Fixtures for approval tests: the demo's environments and a deploy awaiting approval."""

from __future__ import annotations

import pytest

from deployments.models import Environment, Release
from deployments.services.requests import deploy_request


@pytest.fixture
def production(demo) -> Environment:
    return Environment.objects.get(app=demo, name="production")


@pytest.fixture
def staging(demo) -> Environment:
    return Environment.objects.get(app=demo, name="staging")


@pytest.fixture
def v130(demo) -> Release:
    return Release.objects.get(app=demo, version="1.3.0")


@pytest.fixture
def request_deploy(sandbox, production, v130, requester):
    """Request a deploy (default: v1.3.0 to production by the requester)."""

    def make(**options):
        options.setdefault("environment", production)
        options.setdefault("release", v130)
        options.setdefault("requested_by", requester)
        options.setdefault("reason", "Ship the audit export")
        # Staging already runs v1.3.0: the tests that send it there again mean it.
        options.setdefault("confirm_no_op", True)
        return deploy_request(**options)

    return make


@pytest.fixture
def pending(request_deploy):
    """A production deploy awaiting one approval, and its approval request."""
    deploy = request_deploy()
    return deploy.approval_request
