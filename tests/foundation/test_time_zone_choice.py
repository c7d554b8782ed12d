"""Each person chooses on /profile/ the zone every time is shown in (UTC by default)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from approvals.models import AuditEvent
from deployments.models import TimeZonePreference
from deployments.services.tokens import api_token_create

CREATED = datetime(2026, 5, 4, 9, 12, 30, tzinfo=UTC)


@pytest.fixture
def token(viewer, time_machine):
    time_machine.move_to(CREATED, tick=False)
    api_token, _ = api_token_create(user=viewer, name="ci")
    time_machine.move_to(datetime(2026, 5, 5, tzinfo=UTC), tick=False)
    return api_token


def test_times_are_utc_with_the_zone_shown_until_a_zone_is_chosen(client, viewer, token):
    client.force_login(viewer)
    page = client.get("/profile/").content.decode()
    assert (
        '<time datetime="2026-05-04T09:12:30Z" title="2026-05-04 09:12:30 UTC">'
        "2026-05-04 09:12 UTC</time>" in page
    )
    assert 'value="UTC"' in page


def test_a_paris_user_sees_paris_time_with_its_zone_and_the_datetime_stays_utc(
    client, viewer, token
):
    client.force_login(viewer)
    response = client.post("/profile/time-zone/", {"time_zone": "Europe/Paris"})
    assert response.status_code == 302
    page = client.get("/profile/").content.decode()
    assert "Times are now shown in Europe/Paris." in page
    assert (
        '<time datetime="2026-05-04T09:12:30Z" title="2026-05-04 11:12:30 CEST">'
        "2026-05-04 11:12 CEST</time>" in page
    )
    assert 'value="Europe/Paris"' in page
    event = AuditEvent.objects.get(verb="profile.time_zone_changed")
    assert (event.actor_user_id, event.data) == (viewer.pk, {"from": "UTC", "to": "Europe/Paris"})

    # A later sign-in, in another browser, reads the choice from the database.
    other = Client()
    other.force_login(viewer)
    assert "2026-05-04 11:12 CEST</time>" in other.get("/profile/").content.decode()

    # Saving the same zone changes nothing and records nothing.
    client.post("/profile/time-zone/", {"time_zone": "Europe/Paris"})
    assert AuditEvent.objects.filter(verb="profile.time_zone_changed").count() == 1


def test_an_unknown_zone_is_refused_with_a_sentence_and_changes_nothing(client, viewer, token):
    client.force_login(viewer)
    response = client.post("/profile/time-zone/", {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "“Mars/Olympus_Mons” is not a time zone HotDash knows" in page
    assert not TimeZonePreference.objects.exists()
    assert not AuditEvent.objects.filter(verb="profile.time_zone_changed").exists()
    assert "2026-05-04 09:12 UTC</time>" in client.get("/profile/").content.decode()


def test_the_choice_needs_a_signed_in_user_and_csrf(viewer):
    anonymous = Client()
    response = anonymous.post("/profile/time-zone/", {"time_zone": "Europe/Paris"})
    assert response.status_code == 302 and "/login" in response["Location"]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(viewer)
    assert strict.post("/profile/time-zone/", {"time_zone": "Europe/Paris"}).status_code == 403
    assert not TimeZonePreference.objects.exists()
