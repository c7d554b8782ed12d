"""Fly.io Machines API client: apps, machines, leases, secrets.

Paths, fields and codes follow the Fly Machines API documentation, and Fly's own Go client where
the two disagree. Responses are parsed into frozen dataclasses at this boundary; nothing above it
sees Fly's JSON.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from .http import FLY, ApiClient, APIError, PermanentAPIError, RetryableAPIError, build_client

LEASE_NONCE_HEADER = "fly-machine-lease-nonce"
# Metadata key that makes a machine create reconcilable after a lost response.
CREATE_KEY = "hotdash_create_key"
MAX_WAIT_SECONDS = 60  # the /wait endpoint's own cap


@dataclass(frozen=True)
class App:
    id: str
    name: str
    status: str
    org_slug: str
    machine_count: int | None


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str
    digest: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class CheckStatus:
    name: str
    status: str  # passing / warning / critical
    output: str
    updated_at: str

    @property
    def passing(self) -> bool:
        return self.status == "passing"


@dataclass(frozen=True)
class MachineEvent:
    type: str
    status: str
    source: str
    timestamp: int  # epoch milliseconds


@dataclass(frozen=True)
class Machine:
    id: str
    name: str
    state: str
    region: str
    instance_id: str
    image: str
    image_ref: ImageRef | None
    config: dict[str, Any]
    checks: tuple[CheckStatus, ...]
    events: tuple[MachineEvent, ...]  # newest first, as Fly sends them
    metadata: Mapping[str, str]
    nonce: str | None = None

    @property
    def healthy(self) -> bool:
        """flyctl's rule: at least one check result, and every result passing."""
        return bool(self.checks) and all(check.passing for check in self.checks)


@dataclass(frozen=True)
class Lease:
    nonce: str
    owner: str
    description: str
    expires_at: int  # unix seconds
    version: str


@dataclass(frozen=True)
class Secret:
    name: str
    digest: str
    created_at: datetime | None  # when the current value was set


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def _parse_app(data: Mapping[str, Any]) -> App:
    organization = data.get("organization") or {}
    return App(
        id=str(data.get("id", "")),
        name=data["name"],
        status=data.get("status") or "",
        org_slug=organization.get("slug", ""),
        machine_count=data.get("machine_count"),
    )


def _parse_machine(data: Mapping[str, Any]) -> Machine:
    config = copy.deepcopy(data.get("config") or {})
    ref = data.get("image_ref")
    return Machine(
        id=data["id"],
        name=data.get("name", ""),
        state=data.get("state", ""),
        region=data.get("region", ""),
        # Newer API versions also send "version"; instance_id is the documented name.
        instance_id=data.get("instance_id") or data.get("version") or "",
        image=config.get("image", ""),
        image_ref=ImageRef(
            registry=ref.get("registry", ""),
            repository=ref.get("repository", ""),
            tag=ref.get("tag", ""),
            digest=ref.get("digest", ""),
            labels=dict(ref.get("labels") or {}),
        )
        if ref
        else None,
        config=config,
        checks=tuple(
            CheckStatus(
                name=check.get("name", ""),
                status=check.get("status", ""),
                output=check.get("output", ""),
                updated_at=check.get("updated_at", ""),
            )
            for check in data.get("checks") or ()
        ),
        events=tuple(
            MachineEvent(
                type=event.get("type", ""),
                status=event.get("status", ""),
                source=event.get("source", ""),
                timestamp=int(event.get("timestamp") or 0),
            )
            for event in data.get("events") or ()
        ),
        metadata=dict(config.get("metadata") or {}),
        nonce=data.get("nonce"),
    )


def _parse_lease(data: Mapping[str, Any]) -> Lease:
    # The docs and fly-go show an envelope {"status", "data": {...}}; the spec shows the bare
    # Lease. Accept both.
    body = data.get("data") if isinstance(data.get("data"), dict) else data
    return Lease(
        nonce=body.get("nonce", ""),
        owner=body.get("owner", ""),
        description=body.get("description", ""),
        expires_at=int(body.get("expires_at") or 0),
        version=body.get("version", ""),
    )


def _nonce_header(nonce: str | None) -> dict[str, str] | None:
    return {LEASE_NONCE_HEADER: nonce} if nonce else None


def _absent(error: APIError) -> bool:
    return isinstance(error, PermanentAPIError) and error.status == 404


class FlyClient:
    """The Fly Machines API, for one token. Every method raises :class:`APIError` subclasses."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> FlyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _app(app: str) -> str:
        return f"/apps/{quote(app, safe='')}"

    def _machine(self, app: str, machine_id: str) -> str:
        return f"{self._app(app)}/machines/{quote(machine_id, safe='')}"

    # --- apps ----------------------------------------------------------------------------

    def list_apps(self, org_slug: str) -> list[App]:
        """Every app of an organization (names and machine counts)."""
        body = self.api.get_json("/apps", params={"org_slug": org_slug})
        return [_parse_app(item) for item in body.get("apps") or ()]

    def get_app(self, name: str) -> App:
        """One app; 404 (name free) and 403 (another org's app) raise PermanentAPIError."""
        return _parse_app(self.api.get_json(self._app(name)))

    def find_app(self, name: str) -> App | None:
        """The app, or None when no app has that name."""
        try:
            return self.get_app(name)
        except PermanentAPIError as error:
            if _absent(error):
                return None
            raise

    def create_app(self, name: str, org_slug: str, *, network: str | None = None) -> App:
        """Create an app and return it. 422 name_taken is permanent.

        The body uses ``app_name`` (docs and spec); current fly-go sends ``name`` instead.
        A lost response is reconciled by looking the app up before trying again.
        """
        body: dict[str, Any] = {"app_name": name, "org_slug": org_slug}
        if network:
            body["network"] = network
        return self.api.create(
            "POST",
            "/apps",
            json=body,
            parse=lambda _response: self.get_app(name),
            find=lambda: self.find_app(name),
        )

    def delete_app(self, name: str, *, force: bool = False) -> None:
        """Delete an app (``force`` stops its machines first). An absent app counts as deleted."""
        try:
            self.api.request("DELETE", self._app(name), params={"force": "true"} if force else None)
        except PermanentAPIError as error:
            if not _absent(error):
                raise

    # --- machines ------------------------------------------------------------------------

    def list_machines(
        self,
        app: str,
        *,
        metadata: Mapping[str, str] | None = None,
        region: str | None = None,
        include_deleted: bool = False,
    ) -> list[Machine]:
        """Machines of an app, optionally only those whose config metadata matches."""
        params = {f"metadata.{key}": value for key, value in (metadata or {}).items()}
        if region:
            params["region"] = region
        if include_deleted:
            params["include_deleted"] = "true"
        body = self.api.get_json(f"{self._app(app)}/machines", params=params)
        return [_parse_machine(item) for item in body]

    def get_machine(self, app: str, machine_id: str) -> Machine:
        """One machine with its current state, checks and events."""
        return _parse_machine(self.api.get_json(self._machine(app, machine_id)))

    def create_machine(
        self,
        app: str,
        config: Mapping[str, Any],
        *,
        name: str | None = None,
        region: str | None = None,
        lease_ttl: int | None = None,
        skip_launch: bool = False,
    ) -> Machine:
        """Create (and unless ``skip_launch``, start) one machine; never creates two.

        The config's metadata gets a unique ``hotdash_create_key`` (kept if the caller set
        one). After a retryable failure the machine is looked up by that key before the create
        is sent again. Fly answers 200 (the spec agrees; the docs once said 201): any 2xx is OK.
        """
        config = copy.deepcopy(dict(config))
        metadata = config.setdefault("metadata", {})
        key = metadata.setdefault(CREATE_KEY, uuid.uuid4().hex)
        body: dict[str, Any] = {"config": config}
        if name:
            body["name"] = name
        if region:
            body["region"] = region
        if lease_ttl:
            body["lease_ttl"] = lease_ttl
        if skip_launch:
            body["skip_launch"] = True

        def find() -> Machine | None:
            matches = self.list_machines(app, metadata={CREATE_KEY: key})
            return matches[0] if matches else None

        return self.api.create(
            "POST",
            f"{self._app(app)}/machines",
            json=body,
            parse=lambda response: _parse_machine(response.json()),
            find=find,
        )

    def update_machine(
        self,
        app: str,
        machine_id: str,
        config: Mapping[str, Any],
        *,
        current_version: str | None = None,
        nonce: str | None = None,
        skip_launch: bool = False,
    ) -> Machine:
        """Replace the machine's FULL config (no partial updates); a running machine restarts.

        ``current_version`` (the instance_id you read) makes Fly refuse if someone else
        updated it since. After a retryable failure the machine is read back: if it already
        runs this config under a new instance_id, that is the result; otherwise retry.
        """
        config = copy.deepcopy(dict(config))
        body: dict[str, Any] = {"config": config}
        if current_version:
            body["current_version"] = current_version
        if skip_launch:
            body["skip_launch"] = True

        def find() -> Machine | None:
            machine = self.get_machine(app, machine_id)
            moved = current_version is None or machine.instance_id != current_version
            return machine if moved and machine.config == config else None

        return self.api.create(
            "POST",
            self._machine(app, machine_id),
            json=body,
            headers=_nonce_header(nonce),
            parse=lambda response: _parse_machine(response.json()),
            find=find,
        )

    def _action(self, app: str, machine_id: str, action: str, nonce: str | None, **kw: Any) -> Any:
        # start/stop/suspend set a state: repeating one converges, so retries are safe.
        response = self.api.request(
            "POST",
            f"{self._machine(app, machine_id)}/{action}",
            headers=_nonce_header(nonce),
            idempotent=True,
            **kw,
        )
        return response.json() if response.content else {}

    def start_machine(self, app: str, machine_id: str, *, nonce: str | None = None) -> str:
        """Start a stopped or suspended machine; returns the state it was in before."""
        return self._action(app, machine_id, "start", nonce).get("previous_state", "")

    def stop_machine(
        self,
        app: str,
        machine_id: str,
        *,
        nonce: str | None = None,
        signal: str | None = None,
        timeout: str | None = None,
    ) -> None:
        """Ask a machine to stop (optionally with a signal and a duration-string timeout)."""
        body = {k: v for k, v in {"signal": signal, "timeout": timeout}.items() if v}
        self._action(app, machine_id, "stop", nonce, json=body or None)

    def suspend_machine(self, app: str, machine_id: str, *, nonce: str | None = None) -> None:
        """Suspend a started machine (snapshot to disk; resumes fast on start)."""
        self._action(app, machine_id, "suspend", nonce)

    def delete_machine(
        self, app: str, machine_id: str, *, force: bool = False, nonce: str | None = None
    ) -> None:
        """Destroy a machine (``force`` kills a running one). An absent machine counts as gone."""
        try:
            self.api.request(
                "DELETE",
                self._machine(app, machine_id),
                params={"force": "true"} if force else None,
                headers=_nonce_header(nonce),
            )
        except PermanentAPIError as error:
            if not _absent(error):
                raise

    def wait_for_state(
        self,
        app: str,
        machine_id: str,
        state: str,
        *,
        instance_id: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Return once the machine reaches ``state``; raise RetryableAPIError (408) after
        ``timeout`` seconds. Fly's /wait answers 408 when its own timeout passes first; that
        is looped on, as are other retryable errors (with backoff), until the deadline.
        """
        deadline = self.api.clock() + timeout
        attempt = 0
        while True:
            remaining = deadline - self.api.clock()
            if remaining <= 0:
                raise RetryableAPIError(
                    f"machine {machine_id} did not reach {state} within {timeout:g} s",
                    provider=FLY.name,
                    method="GET",
                    path=self.api.http.base_url.path.rstrip("/")
                    + f"{self._machine(app, machine_id)}/wait",
                    status=408,
                )
            poll = max(1, min(MAX_WAIT_SECONDS, int(remaining)))
            params: dict[str, Any] = {"state": state, "timeout": poll}
            if instance_id:
                params["instance_id"] = instance_id
            try:
                self.api.send_once(
                    "GET",
                    f"{self._machine(app, machine_id)}/wait",
                    params=params,
                    timeout=httpx.Timeout(poll + 10.0, connect=5.0),
                )
                return
            except RetryableAPIError as error:
                if error.status == 408:
                    continue
                delay = self.api.delay_for(error, attempt)
                if self.api.clock() + delay >= deadline or not self.api.sleeps_through(
                    error, delay
                ):
                    raise
                self.api.sleep(delay)
                attempt += 1

    # --- leases --------------------------------------------------------------------------

    def get_lease(self, app: str, machine_id: str) -> Lease | None:
        """The machine's current lease, or None when it has none."""
        try:
            return _parse_lease(self.api.get_json(f"{self._machine(app, machine_id)}/lease"))
        except PermanentAPIError as error:
            if _absent(error):
                return None
            raise

    def acquire_lease(
        self, app: str, machine_id: str, *, ttl: int = 30, description: str = "hotdash"
    ) -> Lease:
        """Take an exclusive lease for ``ttl`` seconds. 409 (held by someone else) is permanent.

        The description gets a unique suffix so that a lost response is reconciled by reading
        the lease back rather than by taking (and being refused) a second one.
        """
        description = f"{description} {uuid.uuid4().hex[:12]}"

        def find() -> Lease | None:
            lease = self.get_lease(app, machine_id)
            return lease if lease and lease.description == description else None

        return self.api.create(
            "POST",
            f"{self._machine(app, machine_id)}/lease",
            json={"ttl": ttl, "description": description},
            parse=lambda response: _parse_lease(response.json()),
            find=find,
        )

    def refresh_lease(self, app: str, machine_id: str, nonce: str, *, ttl: int = 30) -> Lease:
        """Extend a lease we hold (same POST, with our nonce)."""
        response = self.api.request(
            "POST",
            f"{self._machine(app, machine_id)}/lease",
            json={"ttl": ttl},
            headers=_nonce_header(nonce),
            idempotent=True,
        )
        return _parse_lease(response.json())

    def release_lease(self, app: str, machine_id: str, nonce: str) -> None:
        """Give a lease back. An already expired or released lease counts as released."""
        try:
            self.api.request(
                "DELETE", f"{self._machine(app, machine_id)}/lease", headers=_nonce_header(nonce)
            )
        except PermanentAPIError as error:
            if not _absent(error):
                raise

    # --- secrets -------------------------------------------------------------------------

    def list_secrets(self, app: str) -> list[Secret]:
        """Names and digests of an app's secrets; values are never requested."""
        body = self.api.get_json(f"{self._app(app)}/secrets")
        return [
            Secret(name=s["name"], digest=s.get("digest", ""), created_at=_dt(s.get("created_at")))
            for s in body.get("secrets", ())
        ]

    def reveal_secrets(self, app: str) -> dict[str, str]:
        """Secret VALUES by name (``show_secrets=true``), for copying them to another app only.

        Callers must never log, store or render the result; names Fly does not reveal are left out.
        """
        body = self.api.get_json(f"{self._app(app)}/secrets", params={"show_secrets": "true"})
        return {
            item["name"]: item["value"]
            for item in body.get("secrets", ())
            if isinstance(item.get("value"), str)
        }

    def set_secrets(self, app: str, values: Mapping[str, str | None]) -> int:
        """Set (or, with None, unset) secrets in one call; returns the new secrets version.

        Machines see new secrets only after their next update (pass ``min_secrets_version``).
        """
        response = self.api.request(
            "POST", f"{self._app(app)}/secrets", json={"values": dict(values)}, idempotent=True
        )
        body = response.json()
        return int(body.get("version", body.get("Version", 0)))


def fly_client(**options: Any) -> FlyClient:
    """A FlyClient for settings.FLY_API_URL and settings.FLY_API_TOKEN (options go to
    :func:`~hotdash.integrations.http.build_client`: timeout, retry, sleep, clock)."""
    from django.conf import settings

    return FlyClient(
        build_client(FLY, base_url=settings.FLY_API_URL, token=settings.FLY_API_TOKEN, **options)
    )
