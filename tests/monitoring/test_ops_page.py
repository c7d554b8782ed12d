"""/ops/: whether Fly and GitHub answer with HotDash's tokens (one cheap call each, remembered
for a minute), the queues and the notification outbox, and what each live worker runs."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from deployments.models import Deploy, Environment, Notification, WorkerHeartbeat

HTMX = {"HX-Request": "true"}


def upstreams(client) -> str:
    response = client.get("/ops/upstreams/", headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


def test_fly_and_github_answer_and_are_asked_once_a_minute(
    client, demo, viewer, sandbox, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    client.force_login(viewer)
    page = client.get("/ops/").content.decode()
    assert 'hx-get="/ops/upstreams/" hx-trigger="load"' in page  # the page itself asks nobody
    assert sandbox.calls() == []

    html = upstreams(client)
    fly = html[html.index('id="upstream-fly"') : html.index('id="upstream-github"')]
    github = html[html.index('id="upstream-github"') :]
    assert "state-healthy" in fly and "Reachable, token accepted" in fly
    assert "state-healthy" in github and "Reachable, token accepted" in github
    assert [(c.service, c.method) for c in sandbox.calls()] == [("fly", "GET"), ("github", "GET")]

    time_machine.shift(timedelta(seconds=59))
    upstreams(client)
    assert len(sandbox.calls()) == 2  # remembered for a minute
    time_machine.shift(timedelta(seconds=2))
    upstreams(client)
    assert len(sandbox.calls()) == 4


def test_a_refused_token_and_an_unreachable_provider_are_told_apart(client, demo, viewer, sandbox):
    sandbox.add_fault("status", service="github", status=401)
    sandbox.add_fault("drop", service="fly")
    client.force_login(viewer)
    html = upstreams(client)
    fly = html[html.index('id="upstream-fly"') : html.index('id="upstream-github"')]
    github = html[html.index('id="upstream-github"') :]
    assert "state-failing" in fly and "Unreachable: connection failed" in fly
    assert "state-failing" in github
    assert "Reachable, but the token was refused (HTTP 401)" in github
    assert "sandbox-github-token" not in html and "sandbox-fly-token" not in html


def test_without_an_app_nothing_is_asked(client, db, viewer, sandbox):
    client.force_login(viewer)
    assert upstreams(client).count("No app yet: nothing to ask.") == 2
    assert sandbox.calls() == []


def test_ops_shows_the_backlog_the_outbox_and_what_each_worker_runs(
    client, demo, viewer, requester
):
    now = timezone.now()
    production = demo.environments.get(kind=Environment.Kind.PRODUCTION)
    staging = demo.environments.get(kind=Environment.Kind.STAGING)
    running = Deploy.objects.create(
        environment=staging,
        requested_by=requester,
        reason="run",
        state=Deploy.State.RUNNING,
        lease_owner="run:celery@w1:ab12cd34",
        lease_expires_at=now + timedelta(minutes=1),
    )
    for state in (Deploy.State.QUEUED, Deploy.State.QUEUED, Deploy.State.AWAITING_APPROVAL):
        Deploy.objects.create(
            environment=production, requested_by=requester, reason="wait", state=state
        )
    Notification.objects.create(app=demo, event="deploy.failed", payload={})
    Notification.objects.create(
        app=demo, event="deploy.failed", payload={}, state=Notification.State.FAILED
    )
    WorkerHeartbeat.objects.create(hostname="celery@w1", seen_at=now)
    WorkerHeartbeat.objects.create(hostname="celery@w2", seen_at=now)
    client.force_login(viewer)
    page = client.get("/ops/").content.decode()
    backlog = page[page.index('id="backlog"') : page.index("</dd>", page.index('id="backlog"'))]
    assert "2 deploys waiting for a worker · 1 awaiting approval" in backlog
    outbox = page[page.index('id="outbox"') : page.index("</dd>", page.index('id="outbox"'))]
    assert "1 being sent" in outbox and "1 gave up in the last 24 h" in outbox
    workers = page[page.index('id="workers"') : page.index('id="uptime"')]
    w1 = workers.split("celery@w1")[1].split("</tr>")[0]
    w2 = workers.split("celery@w2")[1].split("</tr>")[0]
    assert f'href="/deploys/{running.pk}/">deploy #{running.pk}</a>' in w1
    assert "idle" in w2
