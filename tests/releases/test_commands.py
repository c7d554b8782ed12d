"""``manage.py rollback`` and ``manage.py deploy``: confirmation, progress, exit codes.

Between two progress polls the command sleeps; the tests replace that sleep with one step of
the real engine against the sandbox, so the command follows a real rollout."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from deployments.models import Deploy, Environment
from tests.engine.conftest import Driver, fast_health


@pytest.fixture
def driver(demo, sandbox, time_machine, settings, monkeypatch):
    settings.DEPLOY_POLL_SECONDS = 1
    settings.DEPLOY_QUEUE_POLL_SECONDS = 1
    for environment in demo.environments.all():
        fast_health(environment)
    time_machine.move_to(sandbox.clock.now(), tick=False)
    engine = Driver(sandbox=sandbox, traveller=time_machine)

    def one_engine_step(seconds: float) -> None:
        deploy = Deploy.objects.latest("id")
        if deploy.state in (Deploy.State.QUEUED, Deploy.State.RUNNING, Deploy.State.VERIFYING):
            following = engine.run_once(deploy)
            if following is not None:
                engine.tick(max(following.countdown, 0.5))

    monkeypatch.setattr("deployments.management.commands.deploy.time.sleep", one_engine_step)
    return engine


def run(*args, stdin: str = ""):
    out = io.StringIO()
    call_command(*args, "--poll", "0", stdout=out, stdin=io.StringIO(stdin))
    return out.getvalue()


def test_rollback_asks_for_the_app_name_on_production_then_follows_to_success(
    demo, approver, driver
):
    output = run(
        "rollback",
        "hot-dash",
        "v1.1.1",
        "--env",
        "production",
        "--reason",
        "5xx spike",
        "--as",
        "approver",
        stdin="hot-dash\n",
    )
    assert "Type the app name (hot-dash) to confirm: " in output
    assert "Fast path: no approval needed" in output
    assert "Will lock production and mark v1.2.0 bad when it starts." in output
    assert "state: queued" in output and "state: running" in output
    assert "— done" in output
    deploy = Deploy.objects.get(kind=Deploy.Kind.ROLLBACK)
    assert f"Rollback #{deploy.pk} succeeded; health verified" in output
    assert deploy.state == Deploy.State.SUCCEEDED and deploy.health_verified


def test_a_wrong_confirmation_requests_nothing_and_exits_1(demo, approver, driver):
    with pytest.raises(CommandError) as info:
        run(
            "rollback",
            "hot-dash",
            "1.1.1",
            "--env",
            "production",
            "--reason",
            "x",
            "--as",
            "approver",
            stdin="hot-dahs\n",
        )
    assert info.value.returncode == 1
    assert "Confirmation did not match 'hot-dash'; nothing was requested." in str(info.value)
    assert not Deploy.objects.filter(kind=Deploy.Kind.ROLLBACK).exists()


def test_yes_skips_the_prompt_and_a_failed_rollback_exits_3(demo, approver, driver, sandbox):
    sandbox.mark_image(demo.releases.get(version="1.1.1").image_ref, healthy=False)
    with pytest.raises(CommandError) as info:
        run(
            "rollback",
            "hot-dash",
            "1.1.1",
            "--env",
            "production",
            "--reason",
            "x",
            "--as",
            "approver",
            "--yes",
        )
    assert info.value.returncode == 3
    assert "ended failed: Health checks failed" in str(info.value)


def test_an_emergency_rollback_asks_for_the_app_name_on_staging_too(demo, approver, driver):
    demo.environments.filter(name="staging").update(health=Environment.Health.FAILING)
    output = run(
        "rollback",
        "hot-dash",
        "1.3.0-rc.1",
        "--env",
        "staging",
        "--reason",
        "login broken",
        "--as",
        "approver",
        "--emergency",
        stdin="hot-dash\n",
    )
    assert "Type the app name (hot-dash) to confirm: " in output
    assert "Emergency rollback: every machine at once, no approval" in output
    deploy = Deploy.objects.get(kind=Deploy.Kind.ROLLBACK)
    assert deploy.emergency and deploy.state == Deploy.State.SUCCEEDED
    assert f"Rollback #{deploy.pk} succeeded" in output


def test_an_emergency_rollback_outside_trouble_is_refused(demo, approver, driver):
    with pytest.raises(CommandError) as info:
        run(
            "rollback",
            "hot-dash",
            "1.3.0-rc.1",
            "--env",
            "staging",
            "--reason",
            "x",
            "--as",
            "approver",
            "--emergency",
            "--yes",
        )
    assert info.value.returncode == 1
    assert "Refused (not_in_trouble): hot-dash/staging is not in trouble" in str(info.value)


def test_rollback_offers_no_no_op_confirmation(demo, approver, driver):
    # A rollback to the live release is refused, so there is nothing to confirm.
    with pytest.raises(CommandError) as info:
        run(
            "rollback",
            *("hot-dash", "1.1.1", "--env", "staging", "--reason", "x", "--as", "approver"),
            "--confirm-no-op",
        )
    assert "unrecognized arguments: --confirm-no-op" in str(info.value)
    assert not Deploy.objects.filter(reason="x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "1.1.1", "--env", "production"), "No app is named 'nope'."),
        (("hot-dash", "1.1.1", "--env", "qa"), "has no environment 'qa' (it has: "),
        (("hot-dash", "9.9.9", "--env", "staging"), "has no release '9.9.9'."),
        (("hot-dash", "1.2.0", "--env", "staging"), "Refused (release_bad)"),
    ],
)
def test_refusals_exit_1_with_a_clear_message(demo, approver, driver, args, message):
    release = demo.releases.get(version="1.2.0")
    release.bad_marked_at, release.bad_reason = release.published_at, "broke checkout"
    release.save()
    with pytest.raises(CommandError) as info:
        run("rollback", *args, "--reason", "x", "--as", "approver")
    assert info.value.returncode == 1 and message in str(info.value)


def test_deploy_waiting_for_approval_times_out_with_exit_4(demo, requester, driver):
    with pytest.raises(CommandError) as info:
        call_command(
            "deploy",
            "hot-dash",
            "1.3.0",
            "--env",
            "production",
            "--reason",
            "ship",
            "--as",
            "requester",
            "--yes",
            "--timeout",
            "0",
            stdout=io.StringIO(),
        )
    assert info.value.returncode == 4
    assert "Still awaiting approval after 0 s" in str(info.value)


def test_deploy_of_the_live_release_is_refused_unless_confirmed(demo, requester, driver):
    args = ("deploy", "hot-dash", "1.3.0", "--env", "staging", "--reason", "x", "--as", "requester")
    with pytest.raises(CommandError) as info:
        run(*args)
    assert info.value.returncode == 1
    assert (
        "Refused (no_op_unconfirmed): v1.3.0 is already live on staging: this deploy changes "
        "nothing. Confirm that you mean to deploy it anyway." in str(info.value)
    )
    assert not Deploy.objects.filter(reason="x").exists()


def test_deploy_to_staging_follows_to_success(demo, requester, driver):
    # Staging runs v1.3.0 already: redeploying it is confirmed as such.
    output = run(
        "deploy",
        "hot-dash",
        "1.3.0",
        "--env",
        "staging",
        "--reason",
        "ship",
        "--as",
        "requester",
        "--confirm-no-op",
    )
    assert "Type the app name" not in output
    assert output.rstrip().endswith(
        "health verified: " + Deploy.objects.latest("id").health_summary
    )
