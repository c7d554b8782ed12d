"""``python manage.py deploy APP VERSION --env ENV --reason TEXT --as USERNAME [--yes]
[--confirm-no-op]``

Requests a deploy through the same service and policy as the dashboard, asks for the typed
app name on production unless ``--yes``, then prints progress until the deploy ends.
Exit codes: 0 succeeded (health verified) · 1 refused or bad input · 3 ended without
success (failed, rejected, expired, cancelled, superseded) · 4 still running at ``--timeout``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from deployments.models import App, Deploy, Environment, Release
from deployments.services.requests import deploy_request
from hotdash.errors import Refused

EXIT_REFUSED, EXIT_FAILED, EXIT_TIMEOUT = 1, 3, 4


class Command(BaseCommand):
    help = "Request a deploy of APP VERSION to an environment and follow it to the end."
    action = "deploy"
    stealth_options = ("stdin",)

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("app", help="App name, e.g. hot-dash")
        parser.add_argument("version", help="Release version or tag, e.g. 1.2.0 or v1.2.0")
        parser.add_argument("--env", required=True, dest="environment", help="Environment name")
        parser.add_argument("--reason", required=True, help="Why (recorded in the audit log)")
        parser.add_argument("--as", required=True, dest="username", help="Who is asking")
        parser.add_argument(
            "--yes", action="store_true", help="Skip the typed confirmation on production"
        )
        if self.action == "deploy":  # a rollback to the live release is refused, never a no-op
            parser.add_argument(
                "--confirm-no-op",
                action="store_true",
                help="Request it even when VERSION is already live there (it changes nothing)",
            )
        parser.add_argument(
            "--timeout", type=float, default=3600.0, help="Stop following after N seconds"
        )
        parser.add_argument(
            "--poll", type=float, default=2.0, help="Seconds between progress checks"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        app = App.objects.filter(name=options["app"]).first()
        if app is None:
            raise CommandError(f"No app is named {options['app']!r}.", returncode=EXIT_REFUSED)
        environment = app.environments.filter(name=options["environment"]).first()
        if environment is None:
            names = ", ".join(app.environments.values_list("name", flat=True))
            raise CommandError(
                f"{app.name} has no environment {options['environment']!r} (it has: {names}).",
                returncode=EXIT_REFUSED,
            )
        version = options["version"].removeprefix("v")
        release = app.releases.filter(version=version).first()
        if release is None:
            raise CommandError(
                f"{app.name} has no release {options['version']!r}.", returncode=EXIT_REFUSED
            )
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None or not user.is_active:
            raise CommandError(f"No active user {options['username']!r}.", returncode=EXIT_REFUSED)
        confirmation = ""
        if self.needs_confirmation(environment, options):
            confirmation = (
                app.name if options["yes"] else self.confirm(app, environment, release, options)
            )
        try:
            deploy = self.request(
                environment=environment,
                release=release,
                user=user,
                reason=options["reason"],
                confirmation=confirmation,
                options=options,
            )
        except Refused as refusal:
            raise CommandError(
                f"Refused ({refusal.code}): {refusal.message}", returncode=EXIT_REFUSED
            ) from None
        self.stdout.write(
            f"{self.action.capitalize()} #{deploy.pk} of {release.tag} to {environment} "
            f"requested: {deploy.get_state_display().lower()}."
        )
        self.follow(deploy, timeout=options["timeout"], poll=options["poll"])

    def confirm(self, app: App, environment: Environment, release: Release, options) -> str:
        stdin = options.get("stdin") or sys.stdin
        self.stdout.write(
            f"You are about to {self.action} {environment} to {release.tag}. "
            f"Type the app name ({app.name}) to confirm: ",
            ending="",
        )
        self.stdout.flush()
        typed = stdin.readline().strip()
        if typed != app.name:
            raise CommandError(
                f"Confirmation did not match {app.name!r}; nothing was requested.",
                returncode=EXIT_REFUSED,
            )
        return typed

    def needs_confirmation(self, environment: Environment, options) -> bool:
        return environment.kind == Environment.Kind.PRODUCTION

    def request(self, *, environment, release, user, reason, confirmation, options) -> Deploy:
        del confirmation  # typed above; deploy_request has no confirmation of its own
        return deploy_request(
            environment=environment,
            release=release,
            requested_by=user,
            reason=reason,
            confirm_no_op=options["confirm_no_op"],
        )

    def follow(self, deploy: Deploy, *, timeout: float, poll: float) -> None:
        """Print each state change and finished step until the deploy ends."""
        deadline = time.monotonic() + timeout
        state, reported_steps = None, set()
        while True:
            deploy.refresh_from_db()
            if deploy.state != state:
                state = deploy.state
                self.stdout.write(f"  state: {deploy.get_state_display().lower()}")
            for step in deploy.steps.exclude(state="pending").exclude(pk__in=reported_steps):
                if step.state in ("done", "failed", "skipped"):
                    reported_steps.add(step.pk)
                    self.stdout.write(f"  step {step.position}: {step.title} — {step.state}")
            if deploy.is_terminal:
                break
            if time.monotonic() >= deadline:
                raise CommandError(
                    f"Still {deploy.get_state_display().lower()} after {timeout:g} s; follow "
                    f"deploy #{deploy.pk} on the dashboard.",
                    returncode=EXIT_TIMEOUT,
                )
            time.sleep(poll)
        if deploy.state != Deploy.State.SUCCEEDED:
            raise CommandError(
                f"{self.action.capitalize()} #{deploy.pk} ended {deploy.state}: "
                f"{deploy.error or deploy.health_summary or 'see the dashboard'}",
                returncode=EXIT_FAILED,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{self.action.capitalize()} #{deploy.pk} succeeded; health verified: "
                f"{deploy.health_summary or 'yes'}"
            )
        )
