"""End to end with a real worker process: the endpoint answers at once, the worker does the rest."""

from __future__ import annotations

import time

import pytest

from deployments.models import Preview, WebhookDelivery
from tests.webhooks.conftest import SECRET


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_pr_opened_in_the_sandbox_gets_its_preview_from_the_worker(
    demo, live_sandbox, client, settings, start_worker
):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    live_sandbox.webhook.secret = SECRET
    live_sandbox.webhook.sink = lambda headers, body: (
        client.post(
            "/webhooks/github",
            data=body,
            content_type="application/json",
            **{
                "HTTP_" + k.upper().replace("-", "_"): v
                for k, v in headers.items()
                if k.lower() != "content-type"
            },
        ).status_code
    )
    worker = start_worker(
        "previews",
        extra_env={"FLY_API_URL": live_sandbox.fly_url, "GITHUB_API_URL": live_sandbox.github_url},
    )
    number = live_sandbox.open_pull("feat: worker", "worker")["number"]
    assert live_sandbox.webhook.deliveries[-1]["status"] == 202

    deadline = time.monotonic() + 60
    while not WebhookDelivery.objects.filter(state=WebhookDelivery.State.PROCESSED).exists():
        assert time.monotonic() < deadline, worker.log()[-4000:]
        time.sleep(0.2)
    preview = Preview.objects.get(pr_number=number)
    assert preview.environment.deploys.count() == 1
    assert f"hot-dash-pr-{number}" in live_sandbox.fly.apps
    assert [c["number"] for c in live_sandbox.github.comments.values()] == [number]
