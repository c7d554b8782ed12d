"""Fixtures shared with the API, webhook and preview tests."""

from tests.api.conftest import api  # noqa: F401
from tests.previews.conftest import driver, world  # noqa: F401
from tests.webhooks.conftest import hooked_sandbox, post_delivery, process_deliveries  # noqa: F401
