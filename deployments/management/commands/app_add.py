"""``python manage.py app_add OWNER/REPO [--yes] [--as USERNAME]``

Reads the repository's fly.toml / fly.<env>.toml files and its default branch's protection,
prints the proposed app and environments, and (after "yes", or with --yes) creates them as the
admin named by --as (default: the only superuser), syncs the releases and prints what is still
missing to deploy. Exit code 1 when the repository cannot be added; nothing is created then.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from approvals import policy
from deployments.services.onboarding import AppProposal, app_add, app_propose
from hotdash.errors import Refused


class Command(BaseCommand):
    help = "Add an app from a GitHub repository the GitHub App can see."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("repository", help="OWNER/REPO, e.g. acme/shop")
        parser.add_argument("--yes", action="store_true", help="Add it without asking")
        parser.add_argument("--as", dest="username", help="The admin adding it")

    def handle(self, *args: Any, **options: Any) -> None:
        admin = self._admin(options["username"])
        try:
            proposal = app_propose(full_name=options["repository"])
            self._print(proposal)
            if not options["yes"] and input("Add this app? [y/N] ").strip().lower() not in (
                "y",
                "yes",
            ):
                self.stdout.write("Nothing added.")
                return
            added = app_add(
                actor=admin, full_name=proposal.full_name, reviewed=proposal.fingerprint
            )
        except Refused as refusal:
            raise CommandError(refusal.message) from refusal
        self.stdout.write(self.style.SUCCESS(f"Added {added.app.name}. {added.synced}"))
        self.stdout.write("Before the first deploy:")
        for item in added.checklist:
            mark = "[x]" if item.done else "[ ]"
            self.stdout.write(f"  {mark} {item.label}: {item.detail}")

    def _admin(self, username: str | None) -> Any:
        users = get_user_model().objects.filter(is_active=True)
        if username:
            user = users.filter(username=username).first()
            if user is None or not policy.can_administer(user):
                raise CommandError(f"--as {username}: no active admin has that username.")
            return user
        superusers = list(users.filter(is_superuser=True)[:2])
        if len(superusers) != 1:
            raise CommandError("Name the admin adding the app with --as USERNAME.")
        return superusers[0]

    def _print(self, proposal: AppProposal) -> None:
        out = self.stdout
        out.write(f"{proposal.full_name} ({proposal.default_branch}) as app {proposal.name}")
        out.write(f"  Fly organisation: {proposal.fly_org}")
        checks = ", ".join(proposal.required_checks) or "none (every check must pass)"
        out.write(f"  required checks: {checks}")
        out.write(f"  preview apps: {proposal.preview_app_template}")
        for environment in proposal.environments:
            out.write(
                f"  environment {environment.name} ({environment.kind}) from {environment.path}: "
                f"Fly app {environment.fly_app_name}, region {environment.region}, "
                f"{environment.machine_count} machine(s)"
            )
            for name, value in environment.values.items():
                out.write(f"    {name} = {value!r}")
            for key in environment.ignored:
                out.write(f"    ignored (not modelled): {key}")
            for note in environment.notes:
                out.write(f"    note: {note}")
        for note in proposal.notes:
            out.write(f"  note: {note}")
