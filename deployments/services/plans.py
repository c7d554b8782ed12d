"""The plan of a deploy: the ordered steps a worker will run, saved when it is requested."""

from __future__ import annotations

from typing import Any

from deployments import rollout
from deployments.models import Deploy, DeployStep, Environment


def deploy_plan_create(
    *,
    deploy: Deploy,
    target_name: str,
    machine_ids: list[str],
    verify_data: dict[str, Any],
    create_missing: bool = True,
) -> list[DeployStep]:
    """Save the ordered steps a worker will run for ``deploy`` over ``machine_ids``; with
    ``create_missing``, batches that create the machines the environment lacks.

    An emergency rollback goes back on the machines that run now, all in one batch, and has
    no verification window: the batch's health wait (the grace period) is its only check."""
    environment, commit_sha = deploy.environment, deploy.commit_sha
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (
            DeployStep.Kind.VERIFY_ARTIFACT,
            "Verify artifact checksum and image digest",
            verify_data,
        ),
        (
            DeployStep.Kind.GITHUB_DEPLOYMENT,
            f"Create GitHub deployment '{environment.name}' at {commit_sha[:7] or 'the image'}",
            {"environment": environment.name, "ref": commit_sha},
        ),
    ]
    percent = 100 if deploy.emergency else environment.max_unavailable_percent
    existing = rollout.plan_batches(machine_ids, percent) if machine_ids else []
    batches: list[dict[str, Any]] = [{"machines": ids} for ids in existing]
    missing = 0
    if create_missing and not deploy.emergency:
        missing = max(0, environment.machine_count - len(machine_ids))
    if missing:
        size = rollout.batch_size(missing, percent)
        batches += [{"create": min(size, missing - i)} for i in range(0, missing, size)]
    for number, batch in enumerate(batches, start=1):
        batch["batch"] = number
        if "machines" in batch:
            what = f"update {', '.join(batch['machines'])}"
        else:
            what = f"create {batch['create']} machine(s)"
        title = f"Batch {number}/{len(batches)}: {what} to {target_name}"
        steps.append((DeployStep.Kind.UPDATE_BATCH, title, batch))
    if not deploy.emergency:
        steps.append(_verify_step(environment))
    steps.append((DeployStep.Kind.GITHUB_STATUS, "Report the result to GitHub", {}))
    return DeployStep.objects.bulk_create(
        DeployStep(deploy=deploy, position=position, kind=kind, title=title, data=data)
        for position, (kind, title, data) in enumerate(steps, start=1)
    )


def _verify_step(env: Environment) -> tuple[str, str, dict[str, Any]]:
    return (
        DeployStep.Kind.VERIFY,
        f"Watch health for {env.verification_window_seconds} s "
        f"(HTTP {env.health_http_path} every {env.health_http_interval_seconds} s, "
        f"timeout {env.health_http_timeout_seconds} s, "
        f"grace {env.health_http_grace_seconds} s; "
        f"TCP every {env.health_tcp_interval_seconds} s, "
        f"timeout {env.health_tcp_timeout_seconds} s, grace {env.health_tcp_grace_seconds} s)",
        {
            "window_seconds": env.verification_window_seconds,
            "http_path": env.health_http_path,
            "attempts": env.health_attempts,
        },
    )
