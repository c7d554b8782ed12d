"""The simulated Fly Machines API (served under ``/fly/v1``).

Machine states are computed lazily from the virtual clock: every action writes a timeline of
(time, state) steps, and a read picks the step in force. Timings are in virtual seconds.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import demo
from .web import Problem, Request, Response, Router

NONCE_HEADER = "fly-machine-lease-nonce"
CREATE_DELAY = 1.0  # created -> starting
BOOT_TIME = 2.0  # starting -> started
STOP_TIME = 2.0  # stopping -> stopped
SUSPEND_TIME = 1.5
DESTROY_TIME = 1.0
WAIT_STATES = ("started", "stopped", "suspended", "destroyed")
RUNNING = ("started", "starting", "replacing")
# (sustained per second, burst): the docs' per-action limits.
LIMITS = {"get": (5.0, 10.0), "action": (1.0, 3.0)}
DAY = 86400.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class Clock(Protocol):
    def now(self) -> float: ...
    def iso(self, at: float | None = None) -> str: ...
    def wait(self, seconds: float, condition: threading.Condition) -> None: ...


def parse_duration(value: Any) -> float:
    """Go duration text ("10s", "1m30s", "500ms") or an integer in nanoseconds."""
    if isinstance(value, int | float):
        return value / 1e9
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(str(value or "")))


def image_digest(image: str) -> str:
    return "sha256:" + hashlib.sha256(f"image {image}".encode()).hexdigest()


@dataclass
class Lease:
    nonce: str
    owner: str
    description: str
    expires_at: float
    version: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "nonce": self.nonce,
            "owner": self.owner,
            "description": self.description,
            "expires_at": int(self.expires_at),
            "version": self.version,
        }


@dataclass
class Machine:
    id: str
    name: str
    app: str
    region: str
    config: dict[str, Any]
    instance_id: str
    private_ip: str
    created_at: float
    updated_at: float
    timeline: list[tuple[float, str]]
    events: list[dict[str, Any]] = field(default_factory=list)
    lease: Lease | None = None

    def _step(self, now: float) -> tuple[float, str]:
        current = self.timeline[0]
        for step in self.timeline:
            if step[0] <= now:
                current = step
        return current

    def state(self, now: float) -> str:
        return self._step(now)[1]

    def eta(self, state: str, now: float) -> float | None:
        return next((at for at, s in self.timeline if at > now and s == state), None)

    def started_at(self, now: float) -> float | None:
        since, state = self._step(now)
        return since if state == "started" else None

    def active_lease(self, now: float) -> Lease | None:
        return self.lease if self.lease and self.lease.expires_at > now else None


class FlyWorld:
    """Apps, machines, an image registry, leases, secrets and rate limits."""

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        lock: threading.Condition,
        *,
        rate_limits: bool = False,
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.lock = lock
        self.rate_limits = rate_limits
        self.apps: dict[str, dict[str, Any]] = {}
        self.machines: dict[str, Machine] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.broken_images: set[str] = set()
        self.fail_next = 0
        self.secrets: dict[str, dict[str, dict[str, Any]]] = {}
        # Values live apart from the listing: Fly reveals them only to ``show_secrets=true``.
        self.secret_values: dict[str, dict[str, str]] = {}
        self.secrets_version: dict[str, int] = {}
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self.router = self._routes()
        self._seed()

    # --- ids and seeding -----------------------------------------------------------------

    def _hex(self, length: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def _instance_id(self) -> str:
        return "01J" + "".join(
            self.rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(23)
        )

    def register_image(self, image: str, *, digest: str | None = None, labels: Any = None) -> None:
        """Put an image in the registry (CI pushed it); labels may mark it broken."""
        self.images[image] = {"digest": digest or image_digest(image), "labels": dict(labels or {})}

    def _seed(self) -> None:
        for release in demo.DEMO_RELEASES:
            self.register_image(
                release.image_ref,
                digest=release.image_digest,
                labels={"org.opencontainers.image.version": release.version},
            )
        for environment in demo.LIVE_VERSIONS:
            self.add_demo_app(demo.FLY_APPS[environment], environment)

    def add_demo_app(self, app: str, environment: str) -> None:
        """A Fly app like the demo's ``environment`` (production or staging): its machines
        running the live release since an hour after it was published, and its secrets."""
        version = demo.LIVE_VERSIONS[environment]
        since = demo.release(version).published_at.timestamp() + 3600
        self._add_app(app, demo.FLY_ORG, since)
        self.apps[app]["status"] = "deployed"
        for index in range(demo.MACHINE_COUNTS[environment]):
            machine = self._new_machine(
                app,
                demo.machine_config(version, environment),
                name=f"{app}-app-{index + 1}",
                region=demo.REGION,
                at=since,
            )
            machine.timeline = [(since, "started")]
            self._event(machine, "launch", "created", since)
            self._event(machine, "start", "started", since + BOOT_TIME)
        self.put_secrets(
            app,
            {name: f"sandbox-{app}-{name.lower()}" for name in demo.FLY_SECRETS},
            at=self.clock.now() - demo.FLY_SECRET_AGE_DAYS * DAY,
        )

    def _add_app(self, name: str, org: str, at: float) -> dict[str, Any]:
        app = {
            "id": self._hex(12),
            "name": name,
            "status": "pending",
            "organization": {"name": org, "slug": org},
            "network": "default",
            "created_at": int(at * 1000),
        }
        self.apps[name] = app
        return app

    def _new_machine(
        self, app: str, config: dict[str, Any], *, name: str, region: str, at: float
    ) -> Machine:
        machine = Machine(
            id=self._hex(14),
            name=name,
            app=app,
            region=region,
            config=config,
            instance_id=self._instance_id(),
            private_ip=f"fdaa:0:1:a7b:{self._hex(3)}:{self._hex(4)}:{self._hex(4)}:2",
            created_at=at,
            updated_at=at,
            timeline=[(at, "created")],
        )
        self.machines[machine.id] = machine
        return machine

    def _event(self, machine: Machine, kind: str, status: str, at: float) -> None:
        machine.events.insert(
            0,
            {
                "id": self._instance_id(),
                "type": kind,
                "status": status,
                "source": "user" if kind in ("launch", "update", "stop", "destroy") else "flyd",
                "timestamp": int(at * 1000),
            },
        )

    # --- health --------------------------------------------------------------------------

    def image_ref(self, image: str) -> dict[str, Any]:
        name, _, tag = image.rpartition(":")
        if not name or "/" in tag:
            name, tag = image, "latest"
        registry, _, repository = name.partition("/")
        if not repository or ("." not in registry and ":" not in registry):
            registry, repository = "docker.io", name
        known = self.images.get(image) or {"digest": image_digest(image), "labels": {}}
        return {
            "registry": registry,
            "repository": repository,
            "tag": tag,
            "digest": known["digest"],
            "labels": dict(known["labels"]),
        }

    def is_broken(self, machine: Machine) -> bool:
        image = machine.config.get("image", "")
        flag = demo.BROKEN_IMAGE_LABEL
        return (
            image in self.broken_images
            or self.image_ref(image)["labels"].get(flag) == "fail"
            or (machine.config.get("metadata") or {}).get(flag) == "fail"
            or "broken" in self.image_ref(image)["tag"]
        )

    def mark_image(self, image: str, *, healthy: bool) -> None:
        (self.broken_images.discard if healthy else self.broken_images.add)(image)

    def _note_image(self, image: str) -> None:
        if self.fail_next > 0 and image not in self.broken_images:
            self.broken_images.add(image)
            self.fail_next -= 1

    def checks(self, machine: Machine, now: float) -> list[dict[str, Any]]:
        definitions = list((machine.config.get("checks") or {}).items())
        for index, service in enumerate(machine.config.get("services") or ()):
            for check in service.get("checks") or ():
                port = service.get("internal_port", 0)
                name = f"servicecheck-{index:02d}-{check.get('type', 'tcp')}-{port}"
                definitions.append((name, check))
        started = machine.started_at(now)
        broken = self.is_broken(machine)
        results = []
        for name, check in definitions:
            grace = parse_duration(check.get("grace_period"))
            if started is None:
                status, output = "critical", "machine is not running"
            elif broken:
                status = "critical"
                output = (
                    f"GET {check.get('path', '/')}: 500 Internal Server Error"
                    if check.get("type") == "http"
                    else "dial tcp: connection refused"
                )
            elif now < started + grace:
                status, output = "critical", "waiting for the grace period to pass"
            else:
                status, output = "passing", "Success" if check.get("type") == "http" else "OK"
            results.append(
                {"name": name, "status": status, "output": output, "updated_at": self.clock.iso()}
            )
        return results

    def machine_json(self, machine: Machine) -> dict[str, Any]:
        now = self.clock.now()
        state = machine.state(now)
        return {
            "id": machine.id,
            "name": machine.name,
            "state": state,
            "region": machine.region,
            "instance_id": machine.instance_id,
            "private_ip": machine.private_ip,
            "config": machine.config,
            "image_ref": self.image_ref(machine.config.get("image", "")),
            "created_at": self.clock.iso(machine.created_at),
            "updated_at": self.clock.iso(machine.updated_at),
            "events": list(machine.events),
            "checks": [] if state == "destroyed" else self.checks(machine, now),
            "host_status": "ok",
        }

    def summary(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            name: [
                {
                    "id": m.id,
                    "state": m.state(now),
                    "image": m.config.get("image"),
                    "healthy": bool(checks := self.checks(m, now))
                    and all(c["status"] == "passing" for c in checks),
                }
                for m in self.machines.values()
                if m.app == name and m.state(now) != "destroyed"
            ]
            for name in self.apps
        }

    def edit_machine(self, machine_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into a machine's config (nested objects merge, anything else is
        replaced), as a hand-made update: a new version, an update event, a restart."""
        machine = self.machines.get(machine_id)
        if machine is None:
            raise Problem(404, f"machine {machine_id} not found")

        def merge(into: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
            merged = dict(into)
            for key, value in patch.items():
                current = merged.get(key)
                both = isinstance(current, dict) and isinstance(value, dict)
                merged[key] = merge(current, value) if both else value
            return merged

        now = self.clock.now()
        machine.config = merge(machine.config, changes)
        machine.instance_id = self._instance_id()
        machine.updated_at = now
        self._event(machine, "update", "replacing", now)
        if machine.state(now) in RUNNING:
            machine.timeline = [(now, "replacing"), (now + STOP_TIME / 2 + BOOT_TIME, "started")]
        return machine.config

    # --- rate limits ---------------------------------------------------------------------

    def _limit(self, kind: str, ident: str) -> None:
        if not self.rate_limits:
            return
        rate, burst = LIMITS[kind]
        now = self.clock.now()
        tokens, last = self._buckets.get((kind, ident), [burst, now])
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            self._buckets[(kind, ident)] = [tokens, now]
            retry = max(1, math.ceil((1 - tokens) / rate))
            raise Problem(429, "rate limit exceeded", headers={"retry-after": str(retry)})
        self._buckets[(kind, ident)] = [tokens - 1, now]

    # --- lookups -------------------------------------------------------------------------

    def _app(self, app: str) -> dict[str, Any]:
        if app not in self.apps:
            raise Problem(404, f"app {app} not found")
        return self.apps[app]

    def _machine(self, app: str, machine_id: str, *, kind: str = "action") -> Machine:
        self._app(app)
        machine = self.machines.get(machine_id)
        if machine is None or machine.app != app:
            raise Problem(404, f"machine {machine_id} not found")
        self._limit(kind, machine_id)
        return machine

    def _check_lease(self, machine: Machine, req: Request) -> None:
        # Live status code for a missing or wrong nonce is unconfirmed; 409.
        lease = machine.active_lease(self.clock.now())
        if lease and req.headers.get(NONCE_HEADER) != lease.nonce:
            raise Problem(409, f"machine {machine.id} is leased by {lease.owner}; nonce required")

    # --- routes --------------------------------------------------------------------------

    def _routes(self) -> Router:
        router = Router()
        base = "/apps/{app}/machines/{machine_id}"
        for method, pattern, handler in (
            ("GET", "/apps", self.list_apps),
            ("POST", "/apps", self.create_app),
            ("GET", "/apps/{app}", self.get_app),
            ("DELETE", "/apps/{app}", self.delete_app),
            ("GET", "/apps/{app}/machines", self.list_machines),
            ("POST", "/apps/{app}/machines", self.create_machine),
            ("GET", base, self.get_machine),
            ("POST", base, self.update_machine),
            ("DELETE", base, self.delete_machine),
            ("POST", base + "/start", self.start_machine),
            ("POST", base + "/stop", self.stop_machine),
            ("POST", base + "/suspend", self.suspend_machine),
            ("GET", base + "/wait", self.wait_machine),
            ("GET", base + "/events", self.machine_events),
            ("GET", base + "/lease", self.get_lease),
            ("POST", base + "/lease", self.acquire_lease),
            ("DELETE", base + "/lease", self.release_lease),
            ("GET", "/apps/{app}/secrets", self.list_secrets),
            ("POST", "/apps/{app}/secrets", self.set_secrets),
        ):
            router.add(method, pattern, handler)
        return router

    def list_apps(self, req: Request) -> Response:
        org = req.arg("org_slug")
        if not org:
            raise Problem(400, "org_slug is required")
        now = self.clock.now()
        apps = [
            {
                "id": app["id"],
                "name": app["name"],
                "machine_count": sum(
                    1
                    for m in self.machines.values()
                    if m.app == app["name"] and m.state(now) != "destroyed"
                ),
                "volume_count": 0,
                "network": app["network"],  # a string live; the spec says object
            }
            for app in self.apps.values()
            if app["organization"]["slug"] == org
        ]
        return Response(200, {"total_apps": len(apps), "apps": apps})

    def create_app(self, req: Request) -> Response:
        body = req.json()
        # Docs and spec say app_name; current fly-go sends name. Accept both.
        name = body.get("app_name") or body.get("name")
        org = body.get("org_slug")
        if not name or not org:
            raise Problem(400, "app_name and org_slug are required")
        self._limit("action", f"org:{org}")
        if name in self.apps:
            raise Problem(422, "Validation failed: Name has already been taken")
        app = self._add_app(name, org, self.clock.now())
        return Response(201, {"id": app["id"], "created_at": app["created_at"]})

    def get_app(self, req: Request, app: str) -> Response:
        data = self._app(app)
        return Response(200, {k: data[k] for k in ("id", "name", "status", "organization")})

    def delete_app(self, req: Request, app: str) -> Response:
        self._app(app)
        self._limit("action", f"app:{app}")
        now = self.clock.now()
        for machine in self.machines.values():
            if machine.app == app and machine.state(now) != "destroyed":
                machine.timeline = [(now, "destroyed")]
        del self.apps[app]
        self.secrets.pop(app, None)
        self.secret_values.pop(app, None)
        return Response(202)

    def list_machines(self, req: Request, app: str) -> Response:
        self._app(app)
        self._limit("get", f"app:{app}")
        now = self.clock.now()
        wanted = {
            k.removeprefix("metadata."): v[0]
            for k, v in req.query.items()
            if k.startswith("metadata.")
        }
        include_deleted = req.arg("include_deleted") == "true"
        region = req.arg("region")
        machines = [
            self.machine_json(m)
            for m in self.machines.values()
            if m.app == app
            and (include_deleted or m.state(now) != "destroyed")
            and (region is None or m.region == region)
            and all((m.config.get("metadata") or {}).get(k) == v for k, v in wanted.items())
        ]
        return Response(200, machines)

    def create_machine(self, req: Request, app: str) -> Response:
        self._app(app)
        self._limit("action", f"app:{app}")
        body = req.json()
        config = body.get("config")
        if not isinstance(config, dict) or not config.get("image"):
            raise Problem(400, "config.image is required")
        now = self.clock.now()
        name = body.get("name") or f"{app}-{self._hex(6)}"
        if any(
            m.app == app and m.name == name and m.state(now) != "destroyed"
            for m in self.machines.values()
        ):
            raise Problem(409, f"a machine named {name} already exists")
        machine = self._new_machine(
            app, config, name=name, region=body.get("region") or demo.REGION, at=now
        )
        self._note_image(config["image"])
        self._event(machine, "launch", "created", now)
        if not body.get("skip_launch"):
            machine.timeline += [
                (now + CREATE_DELAY, "starting"),
                (now + CREATE_DELAY + BOOT_TIME, "started"),
            ]
        self.apps[app]["status"] = "deployed"
        data = self.machine_json(machine)
        if body.get("lease_ttl"):
            machine.lease = self._lease(machine, int(body["lease_ttl"]), "created with lease")
            data["nonce"] = machine.lease.nonce
        return Response(200, data)  # 200, not 201 (docs and spec agree)

    def get_machine(self, req: Request, app: str, machine_id: str) -> Response:
        return Response(200, self.machine_json(self._machine(app, machine_id, kind="get")))

    def update_machine(self, req: Request, app: str, machine_id: str) -> Response:
        machine = self._machine(app, machine_id)
        self._check_lease(machine, req)
        body = req.json()
        config = body.get("config")
        if not isinstance(config, dict) or not config.get("image"):
            raise Problem(400, "config.image is required (updates replace the full config)")
        current = body.get("current_version")
        if current and current != machine.instance_id:
            raise Problem(412, f"machine version mismatch: current is {machine.instance_id}")
        now = self.clock.now()
        state = machine.state(now)
        if state == "destroyed":
            raise Problem(404, f"machine {machine_id} not found")
        machine.config = config
        machine.instance_id = self._instance_id()
        machine.updated_at = now
        self._note_image(config["image"])
        self._event(machine, "update", "replacing", now)
        if state in RUNNING and not body.get("skip_launch"):
            machine.timeline = [
                (now, "replacing"),
                (now + STOP_TIME / 2, "starting"),
                (now + STOP_TIME / 2 + BOOT_TIME, "started"),
            ]
        else:
            machine.timeline = [(now, "stopped" if state != "created" else "created")]
        if machine.lease:
            machine.lease.version = machine.instance_id
        return Response(200, self.machine_json(machine))

    def delete_machine(self, req: Request, app: str, machine_id: str) -> Response:
        machine = self._machine(app, machine_id)
        self._check_lease(machine, req)
        now = self.clock.now()
        state = machine.state(now)
        if state == "destroyed":
            raise Problem(404, f"machine {machine_id} not found")
        forced = req.arg("force") == "true" or req.arg("kill") == "true"  # docs / fly-go
        if state in RUNNING and not forced:
            raise Problem(412, "unable to destroy machine, not currently stopped or suspended")
        machine.timeline = [(now, "destroying"), (now + DESTROY_TIME, "destroyed")]
        self._event(machine, "destroy", "destroying", now)
        return Response(200, {"ok": True})

    def start_machine(self, req: Request, app: str, machine_id: str) -> Response:
        machine = self._machine(app, machine_id)
        self._check_lease(machine, req)
        now = self.clock.now()
        previous = machine.state(now)
        if previous == "destroyed":
            raise Problem(412, "machine is destroyed")
        if previous not in RUNNING:
            boot = BOOT_TIME / 2 if previous == "suspended" else BOOT_TIME
            machine.timeline = [(now, "starting"), (now + boot, "started")]
            self._event(machine, "start", "starting", now)
        return Response(200, {"previous_state": previous, "migrated": False, "new_host": ""})

    def _halt(self, req: Request, app: str, machine_id: str, final: str) -> Response:
        machine = self._machine(app, machine_id)
        self._check_lease(machine, req)
        now = self.clock.now()
        state = machine.state(now)
        if state == "destroyed":
            raise Problem(412, "machine is destroyed")
        if state in RUNNING:
            delay = STOP_TIME if final == "stopped" else SUSPEND_TIME
            transient = "stopping" if final == "stopped" else "suspending"
            machine.timeline = [(now, transient), (now + delay, final)]
            self._event(machine, "stop" if final == "stopped" else "suspend", transient, now)
        return Response(200, {"ok": True})

    def stop_machine(self, req: Request, app: str, machine_id: str) -> Response:
        req.json()  # optional {"signal", "timeout"}; validated as JSON only
        return self._halt(req, app, machine_id, "stopped")

    def suspend_machine(self, req: Request, app: str, machine_id: str) -> Response:
        return self._halt(req, app, machine_id, "suspended")

    def wait_machine(self, req: Request, app: str, machine_id: str) -> Response:
        machine = self._machine(app, machine_id, kind="get")
        target = req.arg("state", "started")
        if target not in WAIT_STATES:
            raise Problem(400, f"invalid state {target!r}")
        # The spec's parameter is instance_id; newer fly-go sends version. Both are accepted;
        # the sandbox waits on the machine's current version either way.
        raw_timeout = req.arg("timeout", "60") or "60"
        timeout = float(raw_timeout) if raw_timeout.isdigit() else parse_duration(raw_timeout)
        deadline = self.clock.now() + min(60.0, max(1.0, timeout))
        while True:
            now = self.clock.now()
            if machine.state(now) == target:
                return Response(200, {"ok": True})
            if now >= deadline:
                raise Problem(408, f"machine did not reach {target} before the timeout")
            eta = machine.eta(target, now)
            until = deadline if eta is None else min(eta, deadline)
            self.clock.wait(until - now, self.lock)

    def machine_events(self, req: Request, app: str, machine_id: str) -> Response:
        return Response(200, list(self._machine(app, machine_id, kind="get").events))

    # --- leases --------------------------------------------------------------------------

    def _lease(self, machine: Machine, ttl: int, description: str) -> Lease:
        return Lease(
            nonce=self._hex(12),
            owner="sandbox@hotdash.example",
            description=description,
            expires_at=self.clock.now() + ttl,
            version=machine.instance_id,
        )

    @staticmethod
    def _envelope(lease: Lease) -> dict[str, Any]:
        return {"status": "success", "data": lease.as_dict()}

    def get_lease(self, req: Request, app: str, machine_id: str) -> Response:
        machine = self._machine(app, machine_id, kind="get")
        lease = machine.active_lease(self.clock.now())
        if lease is None:
            raise Problem(404, "no active lease")
        return Response(200, self._envelope(lease))

    def acquire_lease(self, req: Request, app: str, machine_id: str) -> Response:
        machine = self._machine(app, machine_id)
        body = req.json()
        raw_ttl = body.get("ttl") or req.arg("ttl") or 30  # docs: body; fly-go: ?ttl=
        ttl = int(raw_ttl)
        held = machine.active_lease(self.clock.now())
        nonce = req.headers.get(NONCE_HEADER)
        if held and nonce == held.nonce:
            held.expires_at = self.clock.now() + ttl  # refresh
            return Response(200, self._envelope(held))
        if held:
            raise Problem(
                409, f"lease currently held by {held.owner}, expires at {int(held.expires_at)}"
            )
        machine.lease = self._lease(machine, ttl, body.get("description") or "")
        return Response(200, self._envelope(machine.lease))

    def release_lease(self, req: Request, app: str, machine_id: str) -> Response:
        machine = self._machine(app, machine_id)
        held = machine.active_lease(self.clock.now())
        nonce = req.headers.get(NONCE_HEADER)
        if not nonce:
            raise Problem(400, f"{NONCE_HEADER} header is required")
        if held is None:
            raise Problem(404, "no active lease")
        if held.nonce != nonce:
            raise Problem(409, "lease nonce mismatch")
        machine.lease = None
        return Response(200, {"status": "success", "data": {"ok": True}})

    # --- secrets -------------------------------------------------------------------------

    def put_secrets(
        self, app: str, values: dict[str, str | None], *, at: float | None = None
    ) -> int:
        """Set (None: unset) secrets of ``app`` (as of ``at``, default now); returns the new
        secrets version."""
        created = self.clock.iso(at)
        secrets = self.secrets.setdefault(app, {})
        stored = self.secret_values.setdefault(app, {})
        for name, value in values.items():
            if value is None:
                secrets.pop(name, None)
                stored.pop(name, None)
            else:
                digest = hashlib.sha256(str(value).encode()).hexdigest()[:16]
                secrets[name] = {"name": name, "digest": digest, "created_at": created}
                stored[name] = str(value)
        self.secrets_version[app] = self.secrets_version.get(app, 0) + 1
        return self.secrets_version[app]

    def age_secret(self, app: str, name: str, days: float) -> None:
        """Make secret ``name`` of ``app`` look set ``days`` ago (its value is kept)."""
        self._app(app)
        entry = self.secrets.get(app, {}).get(name)
        if entry is None:
            raise Problem(404, f"app {app} has no secret {name}")
        entry["created_at"] = self.clock.iso(self.clock.now() - days * DAY)

    def change_machine(
        self,
        app: str,
        *,
        guest: dict[str, Any] | None = None,
        image: str | None = None,
        destroy: bool = False,
    ) -> dict[str, Any]:
        """Change the first running machine of ``app`` behind HotDash's back (an operator
        with flyctl): its guest size, its image, or destroy it."""
        self._app(app)
        now = self.clock.now()
        machine = next(
            (m for m in self.machines.values() if m.app == app and m.state(now) != "destroyed"),
            None,
        )
        if machine is None:
            raise Problem(404, f"app {app} has no machine")
        if destroy:
            machine.timeline = [(now, "destroyed")]
            self._event(machine, "destroy", "destroyed", now)
        else:
            self.edit_machine(
                machine.id, {"guest": guest or {}, **({"image": image} if image else {})}
            )
        return self.machine_json(machine)

    def list_secrets(self, req: Request, app: str) -> Response:
        self._app(app)
        reveal = req.arg("show_secrets") == "true"
        values = self.secret_values.get(app, {})
        listing = [
            {**entry, "value": values[entry["name"]]} if reveal else entry
            for entry in self.secrets.get(app, {}).values()
        ]
        return Response(200, {"secrets": listing})

    def set_secrets(self, req: Request, app: str) -> Response:
        self._app(app)
        values = req.json().get("values")
        if not isinstance(values, dict):
            raise Problem(400, "values must be an object")
        version = self.put_secrets(app, values)
        return Response(200, {"secrets": list(self.secrets[app].values()), "version": version})
