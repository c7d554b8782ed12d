"""hotdash.paths.object_url: the URL reverse gives, for any id and script prefix."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import clear_script_prefix, reverse, set_script_prefix

from hotdash.paths import object_url, page_url


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


@pytest.mark.parametrize("name", ["overview", "approvals:audit", "ops-runbook", "logout"])
def test_page_url_is_what_reverse_gives(name):
    assert page_url(name) == reverse(name)


def test_page_url_follows_the_script_prefix():
    try:
        set_script_prefix("/hotdash/")
        assert page_url("approvals:audit") == "/hotdash/audit/"
        assert Template("{% load paths %}{% page_url 'approvals:audit' %}").render(Context()) == (
            "/hotdash/audit/"
        )
    finally:
        clear_script_prefix()
    assert page_url("approvals:audit") == "/audit/"
