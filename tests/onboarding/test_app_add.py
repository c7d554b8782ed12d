"""Adding an app from a sandbox repository the GitHub App can see: its fly.toml and
fly.production.toml become two environments declaring exactly what the files say; a file that
cannot be read, or a repository the App cannot see, is refused clearly and creates nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from approvals.models import AuditEvent
from deployments import fly_toml
from deployments.models import App, Environment, InstallationRepository, Release
from deployments.services.installations import installation_repositories_refresh
from deployments.services.onboarding import app_add, app_propose
from hotdash.errors import Refused
from hotdash.sandbox import demo

pytestmark = pytest.mark.django_db
DEMO_REPO = f"{demo.REPO_OWNER}/{demo.REPO_NAME}"
MAIN_VERSION = demo.DEMO_RELEASES[-1].version


@pytest.fixture
def visible(sandbox, github_app, admin_user):
    """The App's installations read: the demo repository is visible."""
    installation_repositories_refresh(actor=admin_user)
    assert list(InstallationRepository.objects.values_list("full_name", flat=True)) == [DEMO_REPO]


def declared(path: str) -> dict:
    return fly_toml.parse(demo.fly_toml(path, MAIN_VERSION)).values


def nothing_created() -> bool:
    return (
        not App.objects.exists()
        and not Environment.objects.exists()
        and not AuditEvent.objects.filter(verb="app.added").exists()
    )


def test_two_fly_files_become_an_app_with_two_environments(visible, admin_user):
    proposal = app_propose(full_name=DEMO_REPO)
    assert [(e.name, e.path) for e in proposal.environments] == [
        ("production", "fly.production.toml"),
        ("staging", "fly.toml"),
    ]
    assert proposal.required_checks == demo.REQUIRED_CHECKS
    assert proposal.fly_org == demo.FLY_ORG

    added = app_add(actor=admin_user, full_name=DEMO_REPO, reviewed=proposal.fingerprint)

    app = App.objects.get()
    assert (app.name, app.github_full_name, app.fly_org) == (
        demo.APP_NAME,
        DEMO_REPO,
        demo.FLY_ORG,
    )
    assert app.required_checks == list(demo.REQUIRED_CHECKS)
    production = app.environments.get(name="production")
    staging = app.environments.get(name="staging")
    assert (production.kind, production.fly_app_name) == ("production", demo.PRODUCTION_FLY_APP)
    assert (staging.kind, staging.fly_app_name) == ("staging", demo.STAGING_FLY_APP)
    for environment, path in ((production, "fly.production.toml"), (staging, "fly.toml")):
        values = declared(path)
        assert len(values) > 10
        assert {name: getattr(environment, name) for name in values} == values
    assert production.machine_count == 2  # min_machines_running = 2
    assert staging.machine_count == 1

    event = AuditEvent.objects.get(verb="app.added")
    assert event.actor_user == admin_user
    assert event.data["environments"]["staging"]["file"] == "fly.toml"
    assert Release.objects.filter(app=app).count() == len(demo.DEMO_RELEASES)
    assert "stored" in added.synced
    assert {item.label: item.done for item in added.checklist} == {
        "A release on GitHub": True,
        "A release with a checksum asset": True,
        "Required checks": True,
        f"Fly token can see {demo.PRODUCTION_FLY_APP}": True,
        f"Fly token can see {demo.STAGING_FLY_APP}": True,
    }


def test_an_unparsable_file_is_refused_and_nothing_is_created(visible, sandbox, admin_user):
    sandbox.set_repository_file("fly.toml", 'app = "hot-dash-staging"\n[http_service\n')

    with pytest.raises(Refused) as refused:
        app_add(actor=admin_user, full_name=DEMO_REPO)

    assert refused.value.code == "fly_toml_invalid"
    assert refused.value.message.startswith("fly.toml on main cannot be read: not valid TOML")
    assert nothing_created()


def test_a_file_naming_no_fly_app_is_refused(visible, sandbox, admin_user):
    sandbox.set_repository_file("fly.production.toml", 'primary_region = "ams"\n')

    with pytest.raises(Refused) as refused:
        app_add(actor=admin_user, full_name=DEMO_REPO)

    assert "fly.production.toml on main names no Fly app" in refused.value.message
    assert nothing_created()


def test_a_repository_without_fly_files_is_refused(visible, sandbox, admin_user):
    sandbox.set_repository_file("fly.toml", None)
    sandbox.set_repository_file("fly.production.toml", None)

    with pytest.raises(Refused) as refused:
        app_add(actor=admin_user, full_name=DEMO_REPO)

    assert refused.value.message == (
        f"{DEMO_REPO} has no fly.toml or fly.<environment>.toml at the root of main."
    )
    assert nothing_created()


def test_a_repository_the_app_cannot_see_is_refused(visible, admin_user):
    with pytest.raises(Refused) as refused:
        app_add(actor=admin_user, full_name="hotdash-demo/secret-plans")

    assert refused.value.code == "repository_not_visible"
    assert refused.value.message.startswith(
        "The GitHub App cannot see hotdash-demo/secret-plans: install the App on it"
    )
    assert nothing_created()


def test_with_a_personal_token_a_missing_repository_is_refused(sandbox, admin_user):
    with pytest.raises(Refused) as refused:
        app_add(actor=admin_user, full_name="hotdash-demo/secret-plans")

    assert refused.value.code == "repository_not_visible"
    assert nothing_created()


@pytest.mark.parametrize("name", ["hot-dash", "a/b/c", "/x", "owner/"])
def test_a_name_that_is_not_owner_slash_repo_is_refused(sandbox, admin_user, name):
    with pytest.raises(Refused) as refused:
        app_propose(full_name=name)
    assert refused.value.code == "invalid_repository"
    assert "name it as OWNER/NAME" in refused.value.message


def test_only_admins_add_apps(visible, approver):
    with pytest.raises(Refused) as refused:
        app_add(actor=approver, full_name=DEMO_REPO)
    assert refused.value.code == "forbidden"
    assert nothing_created()


def test_a_proposal_that_changed_since_review_is_refused(visible, sandbox, admin_user):
    reviewed = app_propose(full_name=DEMO_REPO).fingerprint
    sandbox.set_repository_file(
        "fly.toml", demo.fly_toml("fly.toml", MAIN_VERSION).replace('"ord"', '"ams"')
    )

    with pytest.raises(Refused) as refused:
        app_add(actor=admin_user, full_name=DEMO_REPO, reviewed=reviewed)

    assert refused.value.code == "proposal_changed"
    assert nothing_created()


def test_an_app_is_added_once(visible, admin_user):
    app_add(actor=admin_user, full_name=DEMO_REPO)
    with pytest.raises(Refused) as refused:
        app_add(actor=admin_user, full_name=DEMO_REPO)
    assert refused.value.message == f"{DEMO_REPO} is already an app in HotDash."
    assert App.objects.count() == 1


def test_the_command_adds_with_yes_and_prints_the_checklist(visible, admin_user):
    out = io.StringIO()
    call_command("app_add", DEMO_REPO, "--yes", "--as", admin_user.username, stdout=out)

    text = out.getvalue()
    assert "environment production (production) from fly.production.toml" in text
    assert f"Added {demo.APP_NAME}." in text
    assert f"[x] Fly token can see {demo.STAGING_FLY_APP}" in text
    assert App.objects.count() == 1


def test_the_command_adds_nothing_without_a_yes(visible, admin_user, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    out = io.StringIO()
    call_command("app_add", DEMO_REPO, "--as", admin_user.username, stdout=out)

    assert "Nothing added." in out.getvalue()
    assert nothing_created()


def test_the_command_says_why_it_cannot_add(visible, sandbox, admin_user):
    sandbox.set_repository_file("fly.toml", "app = [")
    with pytest.raises(CommandError, match="fly.toml on main cannot be read"):
        call_command("app_add", DEMO_REPO, "--yes", "--as", admin_user.username)
    assert nothing_created()


def test_reading_the_installations_needs_an_app_and_an_admin(sandbox, admin_user, approver):
    with pytest.raises(Refused) as refused:
        installation_repositories_refresh(actor=admin_user)
    assert refused.value.code == "github_app_missing"
    with pytest.raises(Refused) as refused:
        installation_repositories_refresh(actor=approver)
    assert refused.value.code == "forbidden"


def test_reading_the_installations_again_is_audited_only_when_it_changes(
    visible, sandbox, admin_user
):
    assert AuditEvent.objects.filter(verb="installation.changed").count() == 1
    assert not installation_repositories_refresh(actor=admin_user).added
    assert AuditEvent.objects.filter(verb="installation.changed").count() == 1

    with sandbox.lock:
        sandbox.github_app.installations.clear()
    change = installation_repositories_refresh(actor=admin_user)
    assert change.removed == (DEMO_REPO,)
    assert not InstallationRepository.objects.exists()


def test_two_files_naming_one_fly_app_are_refused(visible, sandbox, admin_user):
    sandbox.set_repository_file(
        "fly.toml",
        demo.fly_toml("fly.toml", MAIN_VERSION).replace(
            demo.STAGING_FLY_APP, demo.PRODUCTION_FLY_APP, 1
        ),
    )

    with pytest.raises(Refused) as refused:
        app_add(actor=admin_user, full_name=DEMO_REPO)

    assert refused.value.message == (
        f"fly.production.toml and fly.toml both configure the Fly app {demo.PRODUCTION_FLY_APP}: "
        "each environment needs a Fly app of its own."
    )
    assert nothing_created()


def test_a_value_the_environment_cannot_hold_is_refused_naming_the_file(
    visible, sandbox, admin_user
):
    sandbox.set_repository_file(
        "fly.toml",
        demo.fly_toml("fly.toml", MAIN_VERSION).replace('"ord"', '"a-region-name-too-long"'),
    )

    with pytest.raises(Refused) as refused:
        app_add(actor=admin_user, full_name=DEMO_REPO)

    assert refused.value.code == "invalid_config"
    assert refused.value.message.startswith("fly.toml declares region:")
    assert nothing_created()


def test_the_command_is_run_as_a_named_admin(visible, approver):
    with pytest.raises(CommandError, match="--as approver: no active admin has that username"):
        call_command("app_add", DEMO_REPO, "--yes", "--as", approver.username)
    assert nothing_created()
