"""Fuzzing fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections


@pytest.fixture
def test_connection() -> Iterator[None]:
    """Requests through the real WSGI handler keep the test's database connection (and its
    transaction): like Django's test client, stop closing connections around each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
