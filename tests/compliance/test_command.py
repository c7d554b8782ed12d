"""``manage.py compliance_sweep``: exit 0 when every check passes, 1 when one fails, 2 when the
sweep could not run; on the demo as seeded it fails (rotation) and warns (an optional check)."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from deployments.models import ComplianceRun


@pytest.fixture
def at_sandbox_time(app, sandbox, time_machine):
    """The command judges as of now: make now the sandbox's."""
    time_machine.move_to(sandbox.clock.now(), tick=False)
    return app


def exit_code(*args: str) -> tuple[int, str]:
    """manage.py's exit status (a CommandError's returncode) and the error it prints."""
    try:
        call_command("compliance_sweep", *args)
    except CommandError as error:
        return error.returncode, str(error)
    return 0, ""


def test_the_demo_as_seeded_exits_1_with_fail_and_warn_rows(at_sandbox_time, capsys):
    code, err = exit_code("--app", "hot-dash")
    assert code == 1
    out = capsys.readouterr().out
    assert "Compliance hot-dash" in out and ": FAIL" in out
    assert "  FAIL  Rotation: FLY_API_TOKEN (GitHub Actions) is 120 days old, overdue" in out
    assert "  WARN  Recent CI on the default branch: main: codecov/patch" in out
    assert "  PASS  Branch protection:" in out
    assert "compliance checks FAILED for hot-dash" in err
    [run] = ComplianceRun.objects.all()
    assert run.trigger == ComplianceRun.Trigger.COMMAND


def test_only_warnings_exit_0(at_sandbox_time, sandbox, capsys):
    sandbox.age_secret("github", "FLY_API_TOKEN", 3)
    assert exit_code() == (0, "")
    assert ": WARN" in capsys.readouterr().out


def test_an_unreachable_upstream_exits_2_naming_it(at_sandbox_time, sandbox, capsys):
    sandbox.add_fault("status", service="github", status=503)
    code, err = exit_code("--app", "hot-dash")
    assert code == 2
    out = capsys.readouterr().out
    assert "could not run: GitHub unreachable: github GET" in out and "-> 503" in out
    assert "could not run for hot-dash" in err


def test_an_unknown_app_exits_2(at_sandbox_time):
    assert exit_code("--app", "nope") == (2, "No app named 'nope'.")


def test_markdown_and_json_formats(at_sandbox_time, sandbox, capsys):
    sandbox.age_secret("github", "FLY_API_TOKEN", 3)
    call_command("compliance_sweep", "--format", "markdown")
    assert capsys.readouterr().out.startswith("# Compliance gap report: hot-dash")
    call_command("compliance_sweep", "--format", "json")
    [run] = json.loads(capsys.readouterr().out)
    assert run["app"] == "hot-dash" and run["result"] == "WARN"
    assert {c["title"]: c["status"] for c in run["checks"]}["Recent CI on the default branch"] == (
        "WARN"
    )
