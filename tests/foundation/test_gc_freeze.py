"""Long-lived objects are frozen out of the garbage collector's full collections: at startup
(AppConfig.ready) and again once the first request has loaded the URLconf and templates."""

from __future__ import annotations

import gc

import pytest
from django.core.signals import request_finished

from hotdash import apps


def test_startup_froze_the_loaded_modules():
    assert gc.get_freeze_count() > 10_000


@pytest.mark.django_db
def test_the_first_request_freezes_what_it_loaded_once(client, viewer):
    client.force_login(viewer)
    request_finished.connect(apps._freeze_after_first_request)
    loaded_later = [object(), [], {}]  # stands for what a first request imports and compiles
    gc.unfreeze()
    assert gc.get_freeze_count() == 0

    client.get("/audit/")

    assert gc.get_freeze_count() > 10_000
    assert not any(obj is loaded_later[1] for obj in gc.get_objects())
    assert not request_finished.disconnect(apps._freeze_after_first_request), "only once"
