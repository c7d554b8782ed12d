"""Sessions (hotdash.sessions): read with one statement, still revoked at sign-out and at
expiry, and exactly what Django's database store reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from hotdash.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_reads_what_django_store_reads():
    stored = SessionStore()
    stored["time_zone"] = "Europe/Paris"
    stored.save()

    with CaptureQueriesContext(connection) as queries:
        loaded = SessionStore(stored.session_key).load()

    assert loaded == DjangoSessionStore(stored.session_key).load() == {"time_zone": "Europe/Paris"}
    assert len(queries) == 1


@pytest.mark.parametrize("key", [None, "no-such-session-key-0123456789ab"])
def test_unknown_session_is_empty_and_new(key):
    store = SessionStore(key)
    assert store.load() == {}
    assert store.session_key is None


def test_expired_session_is_not_read():
    stored = SessionStore()
    stored["secret"] = 1
    stored.save()
    Session.objects.filter(pk=stored.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    store = SessionStore(stored.session_key)
    assert store.load() == {}
    assert store.session_key is None


def test_signing_out_revokes_the_session_cookie(client, viewer):
    client.force_login(viewer)
    stolen = client.cookies["sessionid"].value
    assert client.get(reverse("approvals:audit")).status_code == 200

    client.post(reverse("logout"))
    client.cookies["sessionid"] = stolen  # replayed after sign-out

    response = client.get(reverse("approvals:audit"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
