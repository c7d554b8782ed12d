"""A client for the sandbox's control API (``/_sandbox/``): simulate the outside world.

Only meaningful in sandbox mode; the sandbox root is the Fly base URL without ``/fly/v1``.
"""

from __future__ import annotations

from typing import Any

from hotdash.integrations.http import ApiClient, Provider, build_client

SANDBOX = Provider(name="sandbox", request_id_header="x-request-id")


class SandboxControl:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # Simulated activity is not idempotent (a second "open PR" opens a second PR).
        return self.client.request("POST", f"/_sandbox{path}", json=body, idempotent=False).json()

    def open_pull(self, *, title: str, branch: str) -> dict[str, Any]:
        return self._post("/pulls", {"title": title, "branch": branch})

    def push_to_pull(self, *, number: int) -> dict[str, Any]:
        return self._post(f"/pulls/{number}/push", {})

    def close_pull(self, *, number: int, merge: bool) -> dict[str, Any]:
        return self._post(f"/pulls/{number}/close", {"merge": merge})

    def publish_release(self, *, version: str, prerelease: bool) -> dict[str, Any]:
        return self._post("/releases", {"version": version, "prerelease": prerelease})

    def fail_next_images(self, *, count: int) -> dict[str, Any]:
        return self._post("/health", {"fail_next": count})

    def set_app_health(self, *, app: str, status: int, latency: float = 0.0) -> dict[str, Any]:
        """What the Fly app's public health URL answers from now on."""
        return self._post("/app-health", {"app": app, "status": status, "latency": latency})

    def edit_machine(self, *, machine_id: str, config: dict[str, Any]) -> dict[str, Any]:
        """Change a machine's config by hand (``config`` is merged into it)."""
        return self._post(f"/machines/{machine_id}/config", {"config": config})

    def state(self) -> dict[str, Any]:
        return self.client.get_json("/_sandbox/state")


def sandbox_root() -> str:
    """Where the sandbox is served: the Fly base URL without ``/fly/v1``."""
    from django.conf import settings

    return settings.FLY_API_URL.removesuffix("/fly/v1")


def sandbox_app_url(fly_app: str) -> str:
    """The sandbox's simulation of a Fly app's public URL (any path under it answers)."""
    return f"{sandbox_root()}/apps/{fly_app}"


def sandbox_control() -> SandboxControl:
    from django.conf import settings

    return SandboxControl(
        build_client(SANDBOX, base_url=sandbox_root(), token=settings.FLY_API_TOKEN)
    )
