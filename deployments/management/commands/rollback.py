"""``python manage.py rollback APP VERSION --env ENV --reason TEXT --as USERNAME [--yes]
[--emergency]``

Same arguments, confirmation, progress and exit codes as ``deploy``; the request goes
through rollback_request (fast-path policy). The bad mark on the release rolled away from and
the lock are applied when the rollback starts, not when it is requested. ``--emergency``
(approvers, an environment in trouble, the last healthy release) asks for the typed app name
on every environment, like the form.
"""

from __future__ import annotations

from typing import Any

from deployments.management.commands.deploy import Command as DeployCommand
from deployments.models import Deploy, Environment
from deployments.services.rollbacks import rollback_request


class Command(DeployCommand):
    help = "Roll an environment back to APP VERSION and follow the rollback to the end."
    action = "rollback"

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--emergency",
            action="store_true",
            help="Emergency rollback: all machines at once, no approval, no verification window",
        )

    def needs_confirmation(self, environment: Environment, options) -> bool:
        return options["emergency"] or super().needs_confirmation(environment, options)

    def request(self, *, environment, release, user, reason, confirmation, options) -> Deploy:
        deploy = rollback_request(
            environment=environment,
            release=release,
            requested_by=user,
            reason=reason,
            confirmation=confirmation,
            emergency=options["emergency"],
        )
        if deploy.emergency:
            self.stdout.write(
                "Emergency rollback: every machine at once, no approval, no verification window "
                "(audited and notified; shown on the overview until acknowledged)."
            )
        elif deploy.fast_path:
            self.stdout.write("Fast path: no approval needed (audited as a fast-path rollback).")
        elif deploy.state == Deploy.State.AWAITING_APPROVAL:
            self.stdout.write("Not eligible for the fast path: waiting for approval.")
        self.stdout.write(deploy.rollback_hold.summary)
        return deploy
