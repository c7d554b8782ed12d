"""Alerts that reach people: requesters are e-mailed how their deploy went; /ops/ shows the
workers' heartbeats (a stale one in red) and the environments' uptime."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.test import TestCase
from django.utils import timezone

from deployments.models import Deploy, Environment, WorkerHeartbeat
from deployments.services.notifications import notification_send
from tests.notifications.test_email import deliver_emails


def a_deploy(demo, requester) -> Deploy:
    requester.email = "alice@example.com"
    requester.save()
    return Deploy.objects.create(
        environment=demo.environments.get(kind=Environment.Kind.PRODUCTION),
        release=demo.releases.get(version="1.3.0"),
        requested_by=requester,
        reason="ship <it> & see",
    )


def test_the_requester_is_emailed_once_per_event(demo, requester):
    deploy = a_deploy(demo, requester)
    with TestCase.captureOnCommitCallbacks(execute=False):
        notification_send(deploy=deploy, event="approval.approved")
        notification_send(deploy=deploy, event="deploy.succeeded")
        notification_send(deploy=deploy, event="deploy.auto_rolled_back")
        notification_send(deploy=deploy, event="deploy.succeeded")  # again: not e-mailed twice
    deliver_emails()
    assert [m.to for m in mail.outbox] == [["alice@example.com"]] * 3
    approved, succeeded, _ = mail.outbox
    assert approved.subject.startswith("Approved: hot-dash v1.3.0 → production")
    assert succeeded.subject.startswith("Deploy succeeded: hot-dash v1.3.0 → production")
    assert "&amp;" not in approved.body


def test_nothing_is_sent_before_commit_or_without_an_address(demo, requester):
    deploy = a_deploy(demo, requester)
    with TestCase.captureOnCommitCallbacks(execute=False) as on_commit:
        notification_send(deploy=deploy, event="deploy.failed")
    assert len(on_commit) == 1 and mail.outbox == []  # its delivery waits for the commit
    requester.email = ""
    requester.save()
    deploy.refresh_from_db()
    with TestCase.captureOnCommitCallbacks(execute=False) as on_commit:
        notification_send(deploy=deploy, event="deploy.succeeded")
    assert on_commit == [] and deliver_emails() == []


def test_ops_shows_workers_with_a_stale_one_in_red(client, demo, viewer):
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="celery@fresh", seen_at=now - timedelta(seconds=20))
    WorkerHeartbeat.objects.create(hostname="celery@gone", seen_at=now - timedelta(minutes=10))
    production = demo.environments.get(kind=Environment.Kind.PRODUCTION)
    production.uptime, production.uptime_since = Environment.Uptime.DOWN, now
    production.save()
    client.force_login(viewer)
    page = client.get("/ops/").content.decode()
    workers = page[page.index('id="workers"') : page.index('id="uptime"')]
    fresh, gone = workers.split("celery@fresh")[1], workers.split("celery@gone")[1]
    assert "alive" in fresh.split("</tr>")[0] and "stale" in gone.split("</tr>")[0]
    assert "state-failing" in gone.split("</tr>")[0]
    uptime = page[page.index('id="uptime"') : page.index('id="backups"')]
    assert "hot-dash production" in uptime and "down" in uptime
