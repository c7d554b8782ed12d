"""``python manage.py rollback APP VERSION --env ENV --reason TEXT --as USERNAME [--yes]``

Same arguments, confirmation, progress and exit codes as ``deploy``; the request goes
through rollback_request (fast-path policy, bad mark on the release rolled away from, lock).
"""

from __future__ import annotations

from deployments.management.commands.deploy import Command as DeployCommand
from deployments.models import Deploy
from deployments.services.rollbacks import rollback_request


class Command(DeployCommand):
    help = "Roll an environment back to APP VERSION and follow the rollback to the end."
    action = "rollback"

    def request(self, *, environment, release, user, reason, confirmation) -> Deploy:
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
        return deploy
