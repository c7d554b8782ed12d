"""The approval fixtures (a deploy awaiting approval) for the CSRF tests."""

from tests.approvals.conftest import pending, production, request_deploy, v130  # noqa: F401
