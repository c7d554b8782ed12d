"""``python manage.py sandbox``: serve the Fly and GitHub simulator on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.views.decorators.debug import sensitive_variables

from hotdash.sandbox import Clock, SandboxApp, World
from hotdash.sandbox.github_app import DEMO_INSTALLATION_ID
from hotdash.sandbox.server import make_server
from hotdash.sandbox.world import Webhook


@sensitive_variables("private_key")
def _public_key(private_key: str) -> str:
    """The public half of the App's key, for the sandbox to verify its JWTs with."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise CommandError("GITHUB_APP_PRIVATE_KEY is not a private key in PEM format.") from error
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class Command(BaseCommand):
    help = (
        "Serve the sandbox: Fly Machines API at /fly/v1, GitHub REST API at /github, "
        "control API at /_sandbox/ (threaded, 127.0.0.1 only)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument(
            "--speed", type=float, default=1.0, help="virtual seconds per real second (default 1)"
        )
        parser.add_argument("--webhook-url", default="", help="where to deliver GitHub webhooks")
        parser.add_argument(
            "--webhook-secret",
            default=settings.GITHUB_WEBHOOK_SECRET,
            help="HMAC secret for X-Hub-Signature-256 (default: GITHUB_WEBHOOK_SECRET)",
        )
        parser.add_argument(
            "--no-rate-limits", action="store_true", help="turn off Fly's per-action 429s"
        )
        parser.add_argument("--verbose-requests", action="store_true", help="log every request")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["speed"] <= 0:
            raise CommandError("--speed must be positive")
        world = World(
            clock=Clock(start=time.time(), speed=options["speed"], frozen=False),
            rate_limits=not options["no_rate_limits"],
            webhook=Webhook(url=options["webhook_url"], secret=options["webhook_secret"] or ""),
        )
        server = make_server(
            SandboxApp(world), "127.0.0.1", options["port"], quiet=not options["verbose_requests"]
        )
        root = f"http://127.0.0.1:{server.server_port}"
        world.serve_at(root)
        if settings.GITHUB_APP_ID:
            world.register_github_app(
                _public_key(settings.GITHUB_APP_PRIVATE_KEY), settings.GITHUB_APP_ID
            )
            self.stdout.write(
                f"GitHub App {settings.GITHUB_APP_ID} registered (installation "
                f"{DEMO_INSTALLATION_ID} covers the demo repository)"
            )
        self.stdout.write(
            f"Sandbox on {root}: Fly {root}/fly/v1, GitHub {root}/github, control {root}/_sandbox/"
        )
        if options["webhook_url"]:
            self.stdout.write(f"Webhooks go to {options['webhook_url']}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Stopping the sandbox.")
        finally:
            world.hang_release.set()
            server.server_close()
