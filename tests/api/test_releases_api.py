"""GET /api/v1/apps/{app}/releases: per release, how it went on each environment (its pipeline)
and whether it may be deployed there now, with the reasons when not; validated against the
served OpenAPI schema by the ``api`` fixture."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.models import Deploy
from deployments.services.environments import environment_lock
from deployments.services.releases import release_mark_bad
from tests.fixtures.promotion import rehearse

RULE = "production takes a release only after it ran healthy on staging for 10 minutes"


@pytest.fixture
def now(time_machine):
    moment = timezone.now().replace(microsecond=0)
    time_machine.move_to(moment, tick=False)
    return moment


def pipeline(api, user) -> dict[str, dict[str, dict]]:
    response = api(user, "get", "/apps/hot-dash/releases")
    assert response.status_code == 200
    return {
        release["version"]: {env["name"]: env for env in release["environments"]}
        for release in response.json()["releases"]
    }


def test_each_release_says_where_it_ran_and_where_it_may_go_now(api, viewer, demo, now):
    rehearse(demo.releases.get(version="1.3.1"), finished_at=now - timedelta(minutes=4))

    releases = pipeline(api, viewer)

    assert list(releases["1.3.0"]) == ["staging", "production"]  # the promotion order
    assert releases["1.3.0"]["staging"] == {
        "name": "staging",
        "outcome": "succeeded",
        "live": True,
        "may_deploy_now": True,
        "not_now_because": [],
    }
    assert releases["1.3.0"]["production"] == {
        "name": "production",
        "outcome": "never",
        "live": False,
        "may_deploy_now": True,
        "not_now_because": [],
    }
    assert releases["1.3.1"]["staging"]["outcome"] == "succeeded"
    assert releases["1.3.1"]["production"]["not_now_because"] == [
        f"{RULE}: v1.3.1 has run healthy there for 4 of 10 minutes; wait 6 more."
    ]
    assert releases["1.2.0"]["production"]["live"] is True
    assert releases["1.1.0"]["production"]["outcome"] == "succeeded"
    assert releases["1.1.0"]["staging"]["outcome"] == "never"


def test_reasons_add_up_release_lock_and_rule(api, viewer, admin_user, demo, now):
    v131 = demo.releases.get(version="1.3.1")
    failed = rehearse(v131, finished_at=now, state=Deploy.State.FAILED)
    release_mark_bad(release=v131, actor="system", reason="5xx on staging")
    production = demo.environments.get(name="production")
    environment_lock(environment=production, actor=admin_user, reason="incident 7")

    releases = pipeline(api, viewer)

    assert releases["1.3.1"]["staging"] == {
        "name": "staging",
        "outcome": "failed",
        "live": False,
        "may_deploy_now": False,
        "not_now_because": ["Marked bad by system: 5xx on staging"],
    }
    because = releases["1.3.1"]["production"]["not_now_because"]
    assert because[0] == "Marked bad by system: 5xx on staging"
    assert because[1].startswith("hot-dash/production is locked by root since ")
    assert because[1].endswith(": incident 7")
    assert because[2] == f"{RULE}: v1.3.1 never ran on staging; deploy it to staging first."
    # The failure on staging also ended v1.3.0's rehearsal there.
    lock, rule = releases["1.3.0"]["production"]["not_now_because"]
    assert lock == because[1]
    assert rule.startswith(f"{RULE}: v1.3.0 succeeded on staging ")
    assert rule.endswith(f"then deploy #{failed.pk} failed there; deploy v1.3.0 to staging again.")
