"""hotdash.paths.object_url: the URL reverse gives, for any id and script prefix."""

from __future__ import annotations

import pytest
from django.urls import clear_script_prefix, reverse, set_script_prefix

from hotdash.paths import object_url


@pytest.mark.parametrize(
    "name", ["deployments:deploy-detail", "deployments:release-detail", "approvals:deploy-drawer"]
)
@pytest.mark.parametrize("pk", [1, 42, 9_223_372_036_854_775_807])
def test_object_url_is_what_reverse_gives(name, pk):
    assert object_url(name, pk) == reverse(name, args=[pk])


def test_object_url_follows_the_script_prefix():
    try:
        set_script_prefix("/hotdash/")
        assert object_url("deployments:deploy-detail", 7) == "/hotdash/deploys/7/"
    finally:
        clear_script_prefix()
    assert object_url("deployments:deploy-detail", 7) == "/deploys/7/"
