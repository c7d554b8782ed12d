"""What an operator sees after things go wrong: failed deploys and their rollbacks, bad marks
and locks where they matter, the self-refreshing previews table, and the 403 page."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from deployments.models import Deploy, DeployStep

HTMX = {"HX-Request": "true"}


def _fail_first_batch(deploy: Deploy) -> tuple[DeployStep, DeployStep]:
    """Shape ``deploy`` as the engine leaves it when batch 1 fails its health checks."""
    first, second = deploy.steps.filter(kind=DeployStep.Kind.UPDATE_BATCH).order_by("position")
    first.state = DeployStep.State.FAILED
    first.data["updated"] = first.data["machines"]
    first.detail = "Health checks failed after 55 s"
    first.save()
    deploy.steps.filter(position__gt=first.position).update(state=DeployStep.State.SKIPPED)
    now = timezone.now()
    deploy.state = Deploy.State.FAILED
    deploy.error = "Health checks failed after 55 s: GET /health: 500"
    deploy.health_summary = deploy.error
    deploy.health_verified = False
    deploy.started_at, deploy.finished_at = now - timezone.timedelta(seconds=75), now
    deploy.save()
    return first, second


def _auto_rollback(deploy: Deploy, machines: list[str], state: str) -> Deploy:
    rollback = Deploy.objects.create(
        environment=deploy.environment,
        release=deploy.previous_release,
        kind=Deploy.Kind.AUTO_ROLLBACK,
        state=state,
        requested_by_system="system",
        reason=f"Automatic rollback after deploy #{deploy.pk} failed",
        image_ref=deploy.previous_image_ref,
        rollback_of=deploy,
    )
    DeployStep.objects.create(
        deploy=deploy,
        position=deploy.steps.count() + 1,
        kind=DeployStep.Kind.ROLLBACK_MACHINES,
        title=f"Roll {', '.join(machines)} back",
        state=DeployStep.State.DONE,
        data={"machines": machines, "rollback_deploy": rollback.pk},
    )
    return rollback


def test_a_failed_deploy_says_what_failed_and_what_was_done(client, pending, viewer):
    deploy = pending.deploy
    first, second = _fail_first_batch(deploy)
    rollback = _auto_rollback(deploy, first.data["machines"], Deploy.State.RUNNING)
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-detail", args=[deploy.pk])).content.decode()

    outcome = html[html.index('id="deploy-outcome"') : html.index("<h2>Plan</h2>")]
    assert "What failed:" in outcome and first.title in outcome and "GET /health: 500" in outcome
    assert f'href="/deploys/{rollback.pk}/"' in outcome and "Automatic rollback" in outcome
    assert "Running" in outcome  # the rollback's own state, live
    untouched = second.data["machines"][0]
    assert f"Never changed, still on v1.2.0: {untouched}" in outcome
    # The error is said once, not repeated as a health line.
    assert html.count("GET /health: 500") == 1 and "Health: " not in html
    # A skipped batch shows no (misleadingly full) progress bar, and its machine is unchanged.
    assert f'aria-label="{second.title}"' not in html
    assert f"<code>{untouched}</code> " in html and "state-unchanged" in html
    assert "progress-failed" in html and "(1 min 15 s)" in html


def test_the_automatic_rollback_links_back_and_a_failed_one_is_loud(client, pending, viewer):
    deploy = pending.deploy
    first, _ = _fail_first_batch(deploy)
    rollback = _auto_rollback(deploy, first.data["machines"], Deploy.State.FAILED)
    rollback.error = "Health checks failed on the previous image too"
    rollback.save()
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-detail", args=[rollback.pk])).content.decode()
    assert f'<a href="/deploys/{deploy.pk}/">deploy #{deploy.pk}</a>' in html
    assert "an automatic rollback is never itself rolled back" in html
    assert reverse("deployments:rollback-form", args=[deploy.environment_id]) in html


def test_a_succeeded_deploy_rolled_back_later_says_so(client, pending, viewer):
    deploy = pending.deploy
    Deploy.objects.filter(pk=deploy.pk).update(state=Deploy.State.SUCCEEDED)
    later = Deploy.objects.create(
        environment=deploy.environment,
        release=deploy.previous_release,
        kind=Deploy.Kind.ROLLBACK,
        state=Deploy.State.QUEUED,
        requested_by=viewer,
        reason="incident",
        rollback_of=deploy,
    )
    client.force_login(viewer)
    html = client.get(reverse("deployments:deploy-detail", args=[deploy.pk])).content.decode()
    assert "Rolled back later:" in html and f'id="rolled-back-by-{later.pk}"' in html
    assert "What failed" not in html
