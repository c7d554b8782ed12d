"""``python manage.py compliance_sweep [--app APP] [--format text|markdown|json]``: sweep now.

Sweeps every app (or one), stores and audits each run as the daily sweep does, and prints the
report. Exits 0 when every check passes (warnings allowed), 1 when any check fails, and 2 when
a sweep could not run (the report says which upstream was unreachable).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from deployments.models import App, ComplianceRun
from deployments.selectors.compliance import compliance_run_json, compliance_run_report
from deployments.services.compliance import compliance_sweep

EXIT_FAILED, EXIT_NOT_RUN = 1, 2


class Command(BaseCommand):
    help = "Run the compliance sweep now and print its report (exit 0 pass, 1 fail, 2 not run)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--app", help="the app to sweep (default: every app)")
        parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")

    def handle(self, *args: Any, app: str | None, format: str, **options: Any) -> None:
        apps = App.objects.order_by("name")
        if app is not None:
            apps = apps.filter(name=app)
            if not apps.exists():
                raise CommandError(f"No app named {app!r}.", returncode=EXIT_NOT_RUN)
        runs = compliance_sweep(apps=list(apps), trigger=ComplianceRun.Trigger.COMMAND)
        if format == "json":
            self.stdout.write(json.dumps([compliance_run_json(run) for run in runs], indent=2))
        else:
            for run in runs:
                self.stdout.write(compliance_run_report(run, markdown=format == "markdown"))
        not_run = [run.app.name for run in runs if run.result == ComplianceRun.Result.ERROR]
        failed = [run.app.name for run in runs if run.result == ComplianceRun.Result.FAILED]
        if not_run:
            raise CommandError(
                f"compliance sweep could not run for {', '.join(not_run)}", returncode=EXIT_NOT_RUN
            )
        if failed:
            raise CommandError(
                f"compliance checks FAILED for {', '.join(failed)}", returncode=EXIT_FAILED
            )
