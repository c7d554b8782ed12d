"""Buttons that do not lie: a locked environment's deploy buttons are disabled with the reason,
only those who may unlock are offered to, and a release marked bad is marked wherever it is
offered and refused with a sentence."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deployments.models import Deploy, Release
from deployments.services.environments import environment_lock
from deployments.services.releases import release_mark_bad

HTMX = {"HX-Request": "true"}


@pytest.fixture
def locked(production, admin_user):
    environment_lock(environment=production, actor=admin_user, reason="incident 9")
    production.refresh_from_db()
    return production


def test_a_locked_environment_disables_deploy_buttons_for_those_who_cannot_override(
    client, locked, v130, requester, admin_user
):
    url = reverse("deployments:environment-detail", args=[locked.pk])
    request_url = reverse("deployments:deploy-new") + f"?release={v130.pk}"
    client.force_login(requester)
    html = client.get(url).content.decode()
    actions = html.split('id="environment-actions"')[1].split("</section>")[0]
    assert request_url not in actions
    assert (
        '<button type="button" disabled aria-describedby="locked-note">Deploy v1.3.0 to production…'
        in actions
    )
    assert "only an admin may unlock it." in actions.split('id="locked-note">')[1]
    assert 'value="unlock"' not in html

    client.force_login(admin_user)
    html = client.get(url).content.decode()
    assert request_url in html and 'value="unlock"' in html
    assert "or you unlock it above." in html


def test_unlock_is_offered_only_to_those_who_may_unlock(client, locked, requester, admin_user):
    url = reverse("deployments:rollback-list")
    client.force_login(requester)
    row = client.get(url).content.decode().split(f'id="environment-{locked.pk}"')[1]
    row = row.split("</tr>")[0]
    assert "Unlock on the environment page" not in row and "Only an admin may unlock it." in row
    client.force_login(admin_user)
    row = client.get(url).content.decode().split(f'id="environment-{locked.pk}"')[1]
    assert "Unlock on the environment page" in row.split("</tr>")[0]


def test_the_release_page_disables_deploying_to_a_locked_environment(
    client, locked, v130, requester
):
    client.force_login(requester)
    html = client.get(reverse("deployments:release-detail", args=[v130.pk])).content.decode()
    assert (
        f'<button type="button" disabled aria-describedby="locked-{locked.pk}">Deploy to production'
        in html
    )
    assert "(only an admin may unlock or override it)" in html


def test_a_bad_release_is_marked_among_the_choices_and_refused_with_a_sentence(
    client, sandbox, production, demo, requester, approver
):
    bad = Release.objects.get(app=demo, version="1.1.1")
    release_mark_bad(release=bad, actor=approver, reason="corrupts exports")
    client.force_login(requester)
    url = reverse("deployments:deploy-new")
    form = client.get(url + f"?environment={production.pk}").content.decode()
    assert f'<option value="{bad.pk}">hot-dash v1.1.1 — marked bad: refused until the mark is' in (
        form
    )
    response = client.post(
        url, {"environment": production.pk, "release": bad.pk, "reason": "try"}, headers=HTMX
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert "v1.1.1 is marked bad: corrupts exports." in html
    assert 'data-code="release_bad"' in html and "Refused (" not in html
    assert not Deploy.objects.filter(reason="try").exists()
