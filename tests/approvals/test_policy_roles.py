"""A user's roles come from their groups, read in one statement per request."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import policy

pytestmark = pytest.mark.django_db


def _fresh(user):
    """The user as the next request loads it (roles are remembered per user object)."""
    return get_user_model().objects.get(pk=user.pk)


def test_the_highest_role_among_the_groups_counts_and_other_groups_do_not(make_user):
    user = make_user("dora", policy.VIEWER)
    user.groups.add(Group.objects.create(name="on-call"), Group.objects.get(name="approver"))

    loaded = _fresh(user)
    with CaptureQueriesContext(connection) as queries:
        roles = policy.roles_of(loaded)

    assert roles == {policy.VIEWER, policy.DEPLOYER, policy.APPROVER}
    assert len(queries) == 1


def test_a_role_taken_away_is_gone_at_the_next_request(make_user):
    user = make_user("erin", policy.ADMIN)
    assert policy.can_administer(_fresh(user))

    user.groups.set([Group.objects.get(name="viewer")])

    assert policy.roles_of(_fresh(user)) == {policy.VIEWER}
    user.groups.clear()
    assert policy.roles_of(_fresh(user)) == frozenset()
