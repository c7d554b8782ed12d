"""Create the demo world (app hot-dash, staging then production, seven releases, history, users).

Idempotent: a second run finds everything in place and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from approvals import policy
from approvals.audit import record
from deployments.models import (
    App,
    Build,
    Deploy,
    DeployStep,
    Environment,
    GitHubTeamRole,
    Release,
)
from deployments.services.releases import (
    artifact_checks,
    changelog_build,
    image_check,
    version_file_check,
)
from hotdash.integrations.github import Commit
from hotdash.sandbox import demo
from hotdash.sandbox.github import package_json
from hotdash.sandbox.github import user as github_user

DEFAULT_DEMO_PASSWORD = "hotdash-demo"
DEMO_USERS = (
    ("alice", policy.DEPLOYER),
    ("bob", policy.APPROVER),
    ("carol", policy.APPROVER),
    ("dave", policy.VIEWER),
    ("admin", policy.ADMIN),
)
# "Sign in with GitHub": the sandbox organisation's teams (hotdash.sandbox.github_org) and the
# role each gives on the demo app.
DEMO_TEAM_ROLES = {
    "admins": policy.ADMIN,
    "approvers": policy.APPROVER,
    "deployers": policy.DEPLOYER,
    "viewers": policy.VIEWER,
}
# Deploy history: which releases went live, in order, in each environment. v1.3.0 has passed
# its staging rehearsal (weeks ago), so it may be promoted to production at once; the newer
# v1.3.1 never ran on staging, so production refuses it until it has.
HISTORY = {
    "production": ("1.0.0", "1.1.0", "1.1.1", "1.2.0"),
    "staging": ("1.1.1", "1.2.0", "1.3.0-rc.1", "1.3.0"),
}
# The promotion order (staging, then production) and production's rule: a release must have
# run healthy on staging for this many minutes first.
PRODUCTION_PROMOTION_MINUTES = 10
# A staging rollout still running after three minutes is aborted and rolled back.
STAGING_ROLLOUT_DEADLINE_SECONDS = 180


def _machines(environment: str) -> dict[str, Any]:
    """The machine count and guest size the sandbox's demo machines of ``environment`` run."""
    guest = demo.MACHINE_GUESTS[environment]
    return {
        "machine_count": demo.MACHINE_COUNTS[environment],
        "machine_cpu_kind": guest["cpu_kind"],
        "machine_cpus": guest["cpus"],
        "machine_memory_mb": guest["memory_mb"],
    }


class Command(BaseCommand):
    help = "Create the demo app, environments, releases, deploy history and users (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        password = settings.DEMO_PASSWORD
        if not password:
            if not settings.DEBUG:
                raise CommandError(
                    "Refusing to create demo users with a default password while DEBUG is off. "
                    "Set DEMO_PASSWORD explicitly."
                )
            password = DEFAULT_DEMO_PASSWORD
        with transaction.atomic():
            created = self._seed(password)
        if created:
            self.stdout.write(self.style.SUCCESS(f"Demo data created ({', '.join(created)})."))
        else:
            self.stdout.write("Demo data already present; nothing changed.")
        self.stdout.write(
            "Logins (password: %s):" % ("$DEMO_PASSWORD" if settings.DEMO_PASSWORD else password)
        )
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {username:<6} {role}")

    def _seed(self, password: str) -> list[str]:
        created: list[str] = []
        users = self._users(password, created)
        app, was_created = App.objects.get_or_create(
            name=demo.APP_NAME,
            defaults={
                "github_owner": demo.REPO_OWNER,
                "github_repo": demo.REPO_NAME,
                "fly_org": demo.FLY_ORG,
                "version_file_path": demo.VERSION_FILE,
                "required_checks": list(demo.REQUIRED_CHECKS),
            },
        )
        if was_created:
            created.append("app")
        for slug, role in DEMO_TEAM_ROLES.items():
            _, was_created = GitHubTeamRole.objects.get_or_create(
                app=app, org=demo.REPO_OWNER, team_slug=slug, defaults={"role": role}
            )
            if was_created:
                created.append(f"team role {demo.REPO_OWNER}/{slug}")
        environments = {
            "production": self._environment(
                app,
                created,
                name="production",
                kind=Environment.Kind.PRODUCTION,
                fly_app_name=demo.PRODUCTION_FLY_APP,
                **_machines("production"),
                min_machines_running=2,
                health_tcp_grace_seconds=30,
                health_http_grace_seconds=30,
                concurrency_soft_limit=200,
                concurrency_hard_limit=250,
                approvals_required=1,
                promotion_position=2,
                promotion_min_healthy_minutes=PRODUCTION_PROMOTION_MINUTES,
            ),
            "staging": self._environment(
                app,
                created,
                name="staging",
                kind=Environment.Kind.STAGING,
                fly_app_name=demo.STAGING_FLY_APP,
                **_machines("staging"),
                min_machines_running=0,
                auto_stop_machines=Environment.AutoStop.STOP,
                health_tcp_grace_seconds=20,
                health_http_grace_seconds=20,
                concurrency_soft_limit=80,
                concurrency_hard_limit=100,
                approvals_required=0,
                promotion_position=1,
                rollout_deadline_seconds=STAGING_ROLLOUT_DEADLINE_SECONDS,
            ),
        }
        releases = {item.version: self._release(app, item, created) for item in demo.DEMO_RELEASES}
        for env_name, versions in HISTORY.items():
            self._history(environments[env_name], [releases[v] for v in versions], users, created)
        if created:
            record(
                actor="system",
                verb="demo.seeded",
                target=app,
                app=app.name,
                data={"created": created},
            )
        return created

    def _users(self, password: str, created: list[str]) -> dict[str, Any]:
        user_model = get_user_model()
        users = {}
        for username, role in DEMO_USERS:
            user, was_created = user_model.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            if was_created:
                user.set_password(password)
                if role == policy.ADMIN:
                    user.is_staff = True
                    user.is_superuser = True
                user.save()
                user.groups.add(Group.objects.get(name=role))
                created.append(f"user {username}")
            users[username] = user
        return users

    def _environment(
        self, app: App, created: list[str], *, name: str, **fields: Any
    ) -> Environment:
        # What the app's fly.production.toml / fly.toml declare (both environments alike,
        # but for the values passed in); the machine count is not in a fly.toml.
        defaults = {
            "region": demo.REGION,
            "url": f"https://{fields['fly_app_name']}.fly.dev",
            "auto_start_machines": True,
            "internal_port": demo.INTERNAL_PORT,
            "process_group": "app",
            "concurrency_type": Environment.ConcurrencyType.REQUESTS,
            "kill_signal": Environment.KillSignal.SIGINT,
            "kill_timeout_seconds": 30,
            "restart_policy": Environment.RestartPolicy.ON_FAILURE,
            "restart_max_retries": 10,
            "max_unavailable_percent": 30,
            "health_tcp_interval_seconds": 15,
            "health_tcp_timeout_seconds": 2,
            "health_http_path": demo.HEALTH_CHECK_PATH,
            "health_http_interval_seconds": 30,
            "health_http_timeout_seconds": 5,
            "allow_self_approval": False,
            **fields,
        }
        environment, was_created = Environment.objects.get_or_create(
            app=app, name=name, defaults=defaults
        )
        if was_created:
            created.append(f"environment {name}")
        return environment

    def _release(self, app: App, item: demo.DemoRelease, created: list[str]) -> Release:
        index = demo.DEMO_RELEASES.index(item)
        base_tag = demo.DEMO_RELEASES[index - 1].tag if index else None
        commits = [
            Commit(
                sha=c.sha,
                message=c.message,
                author_name=c.author,
                author_login=c.author,
                date=None,
                author_id=github_user("", c.author)["id"],
            )
            for c in item.commits
        ]
        assets = [
            {
                "id": 0,
                "name": item.artifact_name,
                "size": len(item.artifact_bytes),
                "digest": f"sha256:{item.artifact_sha256}",
            },
            {
                "id": 0,
                "name": f"{item.artifact_name}.sha256",
                "size": len(item.checksum_file),
                "digest": "sha256:" + demo.sha256_of(item.checksum_file),
            },
        ]
        # CI registers the image it built for the release commit (what POST /api/v1/builds does).
        Build.objects.get_or_create(
            app=app,
            commit_sha=item.commit_sha,
            defaults={"image_ref": item.image_ref, "image_digest": item.image_digest},
        )
        release, was_created = Release.objects.get_or_create(
            app=app,
            version=item.version,
            defaults={
                "tag": item.tag,
                "is_prerelease": item.prerelease,
                "commit_sha": item.commit_sha,
                "title": item.tag,
                "changelog": changelog_build(
                    commits=commits if base_tag else (),
                    repo_full_name=app.github_full_name,
                    base_tag=base_tag,
                    head_tag=item.tag,
                ),
                "assets": assets,
                "ci_checks": [
                    {"name": name, "state": "success", "ok": True, "url": ""}
                    for name in demo.REQUIRED_CHECKS
                ],
                "artifact_name": item.artifact_name,
                "artifact_sha256": item.artifact_sha256,
                "artifact_digest": f"sha256:{item.artifact_sha256}",
                "image_ref": item.image_ref,
                "image_digest": item.image_digest,
                "validation": Release.Validation.VALID,
                "validation_results": [
                    version_file_check(
                        path=demo.VERSION_FILE,
                        tag=item.tag,
                        version=item.version,
                        content=package_json(item.version),
                    ),
                    *artifact_checks(
                        artifact=item.artifact_name,
                        assets=assets,
                        checksum_text=item.checksum_file.decode(),
                    ),
                    image_check(
                        image_ref=item.image_ref,
                        image_digest=item.image_digest,
                        commit_sha=item.commit_sha,
                    ),
                ],
                "published_at": item.published_at,
                "synced_at": item.published_at,
            },
        )
        if was_created:
            created.append(f"release {item.tag}")
        return release

    def _history(
        self,
        environment: Environment,
        releases: list[Release],
        users: dict[str, Any],
        created: list[str],
    ) -> None:
        if environment.deploys.exists():
            return
        previous: Release | None = None
        for index, release in enumerate(releases):
            started = release.published_at + timedelta(hours=2 + index)
            deploy = Deploy.objects.create(
                environment=environment,
                release=release,
                kind=Deploy.Kind.DEPLOY,
                state=Deploy.State.SUCCEEDED,
                requested_by=users["alice"],
                reason=f"Ship {release.tag}",
                previous_release=previous,
                previous_image_ref=previous.image_ref if previous else "",
                image_ref=release.image_ref,
                image_digest=release.image_digest,
                artifact_sha256=release.artifact_sha256,
                commit_sha=release.commit_sha,
                health_verified=True,
                health_summary="All checks passing after the verification window.",
                created_at=started - timedelta(minutes=20),
                queued_at=started - timedelta(minutes=5),
                started_at=started,
                finished_at=started + timedelta(minutes=4),
            )
            DeployStep.objects.create(
                deploy=deploy,
                position=1,
                kind=DeployStep.Kind.UPDATE_BATCH,
                title=f"Update {environment.machine_count} machine(s) to {release.tag}",
                state=DeployStep.State.DONE,
            )
            previous = release
        environment.current_release = previous
        environment.current_image_ref = previous.image_ref if previous else ""
        environment.health = Environment.Health.HEALTHY
        environment.health_checked_at = previous.published_at if previous else None
        environment.save(
            update_fields=["current_release", "current_image_ref", "health", "health_checked_at"]
        )
        created.append(f"history {environment.name}")
