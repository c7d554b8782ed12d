"""Shared fixtures: personas, the demo world, database-vendor markers, worker processes."""

from __future__ import annotations

import io
import shutil

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

from approvals import policy
from hotdash import queue
from hotdash.integrations import upstream_tally

pytest_plugins = ["tests.fixtures.sandbox", "tests.fixtures.worker"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove this run's private var/ directory (see hotdash.test_settings)."""
    from django.conf import settings

    if settings.VAR_DIR.name.startswith("test-"):
        shutil.rmtree(settings.VAR_DIR, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests are skipped on the SQLite run; CI runs the suite on both."""
    from django.conf import settings

    # Every transactional test restores the migrated rows (role groups, the audit chain head)
    # by serialized rollback. Mixing serialized and plain flushes breaks whichever runs next
    # (missing groups, or duplicate content types), so it is all or nothing.
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction"):
            kwargs = {**marker.kwargs, "serialized_rollback": True}
            item.add_marker(pytest.mark.django_db(*marker.args, **kwargs), append=False)

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    if on_postgres:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (run with DATABASE_URL=postgres://…)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (throttles and counters live there)."""
    cache.clear()


@pytest.fixture(autouse=True)
def _no_coalesced_check_left(monkeypatch):
    """A task message a test asked for (``queue.send_coalesced_soon``) is sent during that
    test (while its patches, which may record the messages, still hold), not a later one."""
    yield
    queue.coalesced_flush()


@pytest.fixture(autouse=True)
def _no_upstream_counts_left():
    """The Fly and GitHub requests a test made are not stored by a later test (which may
    have no database) after its web requests."""
    yield
    upstream_tally.drain()


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, role: str | None = None, **extra):
        user = django_user_model.objects.create_user(
            username=username, password="correct horse battery", **extra
        )
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def requester(make_user):
    return make_user("requester", policy.DEPLOYER)


@pytest.fixture
def approver(make_user):
    return make_user("approver", policy.APPROVER)


@pytest.fixture
def second_approver(make_user):
    return make_user("approver2", policy.APPROVER)


@pytest.fixture
def viewer(make_user):
    return make_user("viewer", policy.VIEWER)


@pytest.fixture
def admin_user(make_user):
    return make_user("root", policy.ADMIN, is_staff=True)


@pytest.fixture
def outsider(make_user):
    """Signed in, but holding no role at all."""
    return make_user("mallory")


@pytest.fixture
def demo(db, settings):
    """The seeded demo world (app hot-dash with production and staging)."""
    settings.DEMO_PASSWORD = "demo-password-for-tests"
    call_command("seed_demo", stdout=io.StringIO())
    from deployments.models import App

    return App.objects.get(name="hot-dash")


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"
