"""The house 404, 403 and 500 pages, with DEBUG on (what `make run` shows) and off; refused
requests logged as one line without a traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from deployments.services.tokens import api_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


def signed_in(user) -> Client:
    client = Client()  # a new client loads the middleware for the DEBUG of this test
    client.force_login(user)
    return client


def test_an_unknown_url_gets_the_house_page(debug, viewer):
    response = signed_in(viewer).get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'id="not-found"' in html and "<code>/no/such/page/</code>" in html
    assert 'aria-label="Main"' in html  # the whole house page, nav included
    assert "technical_404" not in html and "Django tried these URL patterns" not in html


def test_an_http404_from_a_view_gets_the_house_page(debug, viewer):
    response = signed_in(viewer).get("/deploys/999999/")
    assert response.status_code == 404
    assert 'id="not-found"' in response.content.decode()


def test_the_api_keeps_its_own_404_answers(debug, viewer):
    _, raw = api_token_create(user=viewer, name="error pages")
    response = Client().get("/api/v1/deploys/999999", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_forbidden_page_is_the_house_page(debug, viewer):
    response = signed_in(viewer).get("/ops/sandbox/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="forbidden"' in html and "Your role does not allow this." in html
    assert 'aria-label="Main"' in html


def test_the_500_page_needs_neither_a_request_nor_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert 'id="server-error"' in html and "/static/css/app.css" in html


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the configured console handler writes, for the length of the test."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_a_refused_request_is_logged_as_one_line_without_traceback(console, viewer):
    assert signed_in(viewer).get("/ops/sandbox/").status_code == 403
    lines = console.getvalue().splitlines()
    refusals = [line for line in lines if "Forbidden (Permission denied): /ops/sandbox/" in line]
    assert len(refusals) == 1, lines
    assert "Traceback" not in console.getvalue()
    assert "PermissionDenied" not in console.getvalue()


def test_a_server_error_keeps_its_traceback(console):
    try:
        raise RuntimeError("the database went away")
    except RuntimeError:
        logging.getLogger("django.request").error(
            "Internal Server Error: /", exc_info=True, extra={"status_code": 500}
        )
    assert "Traceback" in console.getvalue() and "the database went away" in console.getvalue()
