"""The access log's cheaper logger writes the line gunicorn's own would."""

from __future__ import annotations

import runpy
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms

from hotdash.access_log import AccessLogger
from tests.production.conftest import ROOT

FORMAT = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["access_log_format"]


def line(logger_class: type[Logger], log_format: str, headers: list[tuple[str, str]]) -> str:
    config = Config()
    config.set("access_log_format", log_format)
    logger = logger_class(config)
    environ = {
        "REMOTE_ADDR": "192.0.2.7",
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/webhooks/github?x=1",
        "PATH_INFO": "/webhooks/github",
        "QUERY_STRING": "x=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_USER_AGENT": 'GitHub-Hookshot/"a1"',
    }
    request = SimpleNamespace(headers=headers)
    response = SimpleNamespace(status="202 Accepted", sent=57, headers=[("Vary", "Cookie")])
    atoms = logger.atoms(response, request, environ, timedelta(seconds=1, microseconds=8765))
    return log_format % SafeAtoms(atoms)


@pytest.mark.parametrize(
    "headers",
    [
        [("HOST", "hotdash.example"), ("X-FORWARDED-FOR", "203.0.113.9, 10.0.0.2")],
        [("HOST", "hotdash.example")],
    ],
)
@pytest.mark.parametrize("log_format", [FORMAT, '"%(r)s" %(q)s %(s)s %({vary}o)s'])
def test_the_line_is_gunicorns(headers, log_format):
    ours = line(AccessLogger, log_format, headers)
    assert ours == line(Logger, log_format, headers)
    if log_format == FORMAT:
        forwarded = "203.0.113.9, 10.0.0.2" if len(headers) == 2 else "-"
        assert ours == (
            f'192.0.2.7 forwarded={forwarded} "POST /webhooks/github HTTP/1.1" 202 57 1008ms '
            '"GitHub-Hookshot/\\"a1\\""'
        )
