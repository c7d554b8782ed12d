"""``python manage.py rollback APP VERSION --env ENV --reason TEXT --as USERNAME [--yes]``

Same arguments, confirmation, progress and exit codes as ``deploy``; the request goes
through rollback_request (fast-path policy). The bad mark on the release rolled away from and
the lock are applied when the rollback starts, not when it is requested.
"""

from __future__ import annotations

from deployments.management.commands.deploy import Command as DeployCommand
from deployments.models import Deploy
from deployments.services.rollbacks import rollback_request


class Command(DeployCommand):
    help = "Roll an environment back to APP VERSION and follow the rollback to the end."
    action = "rollback"

    def request(self, *, environment, release, user, reason, confirmation, confirm_no_op) -> Deploy:
        del confirm_no_op  # a rollback goes back to an earlier release: never a no-op check
        deploy = rollback_request(
            environment=environment,
            release=release,
            requested_by=user,
            reason=reason,
            confirmation=confirmation,
        )
        if deploy.fast_path:
            self.stdout.write("Fast path: no approval needed (audited as a fast-path rollback).")
        elif deploy.state == Deploy.State.AWAITING_APPROVAL:
            self.stdout.write("Not eligible for the fast path: waiting for approval.")
        self.stdout.write(deploy.rollback_hold.summary)
        return deploy
