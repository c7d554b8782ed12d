"""``python manage.py import_fly_toml APP ENV --ref TAG [--apply --as USERNAME]``

Reads the environment's ``fly.<env>.toml`` (else ``fly.toml``) at a release's tag from GitHub
and prints what it would change in the environment's declared machine configuration (field,
current, proposed), the keys HotDash does not model (ignored) and notes. With ``--apply``
an admin applies the changes (audited, with the file's blob and commit). Exit code 1 when the
file cannot be read or applied.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from deployments.models import App
from deployments.services.machine_config import FlyTomlImport, fly_toml_apply, fly_toml_read
from hotdash.errors import Refused


class Command(BaseCommand):
    help = "Show (and with --apply, apply) what an app's fly.toml declares for an environment."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("app", help="App name, e.g. hot-dash")
        parser.add_argument("environment", help="Environment name, e.g. production")
        parser.add_argument("--ref", required=True, help="Release tag or version, e.g. v1.3.0")
        parser.add_argument("--apply", action="store_true", help="Apply the changes")
        parser.add_argument("--as", dest="username", help="The admin applying them")

    def handle(self, *args: Any, **options: Any) -> None:
        app = App.objects.filter(name=options["app"]).first()
        if app is None:
            raise CommandError(f"No app is named {options['app']!r}.")
        environment = app.environments.filter(name=options["environment"]).first()
        if environment is None:
            raise CommandError(f"{app.name} has no environment {options['environment']!r}.")
        release = app.releases.filter(version=options["ref"].removeprefix("v")).first()
        if release is None:
            raise CommandError(f"{app.name} has no release {options['ref']!r}.")
        user = None
        if options["apply"]:
            user = get_user_model().objects.filter(username=options["username"] or "").first()
            if user is None:
                raise CommandError("--apply needs --as USERNAME of an existing admin.")
        try:
            if user is None:
                read = fly_toml_read(environment=environment, release=release)
            else:
                read = fly_toml_apply(environment=environment, release=release, actor=user)
        except Refused as refusal:
            raise CommandError(refusal.message) from refusal
        self._print(read, applied=user is not None)

    def _print(self, read: FlyTomlImport, *, applied: bool) -> None:
        out = self.stdout
        out.write(
            f"{read.path} at {read.release.tag} (commit {read.commit_sha[:7]}, "
            f"blob {read.blob_sha[:7]}) for {read.environment}:"
        )
        if not read.changes:
            out.write("  no changes: it declares what the environment already does.")
        for change in read.changes:
            out.write(f"  {change.field}: {change.current!r} -> {change.proposed!r}")
        for key in read.ignored:
            out.write(f"  ignored (not modelled): {key}")
        for note in read.notes:
            out.write(f"  note: {note}")
        if read.changes:
            out.write(
                self.style.SUCCESS(f"Applied {len(read.changes)} change(s).")
                if applied
                else "Not applied; run again with --apply --as USERNAME."
            )
