"""The sandbox as one plain WSGI application.

``/fly/v1/...`` is the Fly Machines API, ``/github/...`` the GitHub REST API,
``/apps/<fly app>/...`` each simulated app's public URL (any path answers as its health
endpoint), ``/login/oauth/...`` GitHub's OAuth web flow (github_org.py), and ``/_sandbox/...``
a JSON control API over the same
:class:`~hotdash.sandbox.world.World` (reset, faults, health, clock, pull requests, releases,
webhooks, the request log).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from .github import DOCS
from .github_app import DEMO_INSTALLATION_ID
from .pages import Pages, is_page
from .web import Problem, Request, Response, Router
from .world import RecordedRequest, World

PREFIXES = {"fly": "/fly/v1", "github": "/github"}
APPS_PREFIX = "/apps/"
OAUTH_PREFIX = "/login/oauth"  # GitHub's web flow, at the root as on github.com
PRE_FAULTS = ("status", "error", "rate_limit")
StartResponse = Callable[..., Any]


class ConnectionDropped(Exception):  # noqa: N818 - an event, not an error of the sandbox
    """A ``drop`` fault: the server applied the request and closes without answering."""


@dataclass
class DrippingResponse(Response):
    """A ``drip`` fault: a normal answer whose body goes out ``chunk`` bytes every ``seconds``,
    without a Content-Length (the server closes the connection after it)."""

    seconds: float = 0.0
    chunk: int = 1

    def drip(self, content: bytes, release: threading.Event) -> Iterator[bytes]:
        for start in range(0, len(content), self.chunk):
            if start:
                release.wait(self.seconds)
            yield content[start : start + self.chunk]


def _error_body(
    service: str, status: int, message: str, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """Fly's {"error"}; GitHub's {"message", "documentation_url", "status"} (+ "errors")."""
    if service == "fly":
        return {"error": message}
    body = {"message": message, "documentation_url": DOCS, "status": str(status)}
    return {**body, "errors": errors} if errors else body


class SandboxApp:
    """WSGI callable serving one world."""

    def __init__(self, world: World | None = None) -> None:
        self.world = world or World()
        self.control = self._control_routes()
        self.pages = Pages(self.world)
        self._request_ids = 0

    # --- WSGI ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        root = f"{environ.get('wsgi.url_scheme', 'http')}://{host}{environ.get('SCRIPT_NAME', '')}"
        path = environ.get("PATH_INFO") or "/"
        method = environ["REQUEST_METHOD"].upper()
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)

        service = next((s for s, p in PREFIXES.items() if path.startswith(p + "/")), None)
        if service:
            prefix = PREFIXES[service]
            request = Request(method, path[len(prefix) :], query, headers, body, root + prefix)
            response = self.serve(service, request)
        elif path.startswith(APPS_PREFIX):
            response = self.serve_app(path[len(APPS_PREFIX) :].split("/", 1)[0])
        elif path.startswith(OAUTH_PREFIX + "/"):
            request = Request(method, path[len(OAUTH_PREFIX) :], query, headers, body, root)
            response = self.serve_oauth(request)
        elif path.startswith("/_sandbox/"):
            request = Request(method, path[len("/_sandbox") :], query, headers, body, root)
            response = self.serve_control(request)
        elif is_page(path):
            response = self.pages.serve(method, path)
        else:
            response = Response(
                404,
                {"error": "not found: use /fly/v1, /github, /apps, /_sandbox or a web page"},
            )

        content = response.content()
        status = f"{response.status} {HTTPStatus(response.status).phrase}"
        header_list = [(k, v) for k, v in response.headers.items()]
        if content or response.status not in (204, 304):
            header_list.append(("Content-Type", response.content_type))
        if isinstance(response, DrippingResponse):
            start_response(status, header_list)
            return response.drip(content, self.world.hang_release)
        header_list.append(("Content-Length", str(len(content))))
        start_response(status, header_list)
        return [content]

    # --- the simulated services ----------------------------------------------------------

    def _common_headers(self, service: str) -> dict[str, str]:
        self._request_ids += 1
        if service == "fly":
            return {"fly-request-id": f"01SBX{self._request_ids:010d}-ord"}
        headers = {"x-github-request-id": f"SBX0:{self._request_ids:06X}"}
        headers.update(self.world.github.rate_headers())
        return headers

    def _fault_response(self, service: str, fault: Any) -> Response:
        if fault.kind != "rate_limit":
            message = "injected fault" if fault.status < 500 else "upstream unavailable"
            return Response(fault.status, _error_body(service, fault.status, message))
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after"] = str(int(fault.retry_after))
        if fault.reset_in is not None:
            # Wall-clock epoch: clients compare the reset with their own clock.
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-reset"] = str(int(time.time() + fault.reset_in))
        status = fault.status if fault.status in (403, 429) else 429
        message = (
            "API rate limit exceeded"
            if fault.reset_in is not None
            else "You have exceeded a secondary rate limit. Please wait a few minutes."
        )
        body = _error_body(service, status, message)
        return Response(status, body, headers)

    def _dispatch(self, service: str, req: Request) -> Response:
        target = self.world.fly if service == "fly" else self.world.github
        try:
            if not req.headers.get("authorization"):
                raise Problem(401, "Requires authentication")
            if service == "github":
                self.world.github_app.authenticate(req)
                if self.world.github_app.router.pattern(req.method, req.path):
                    target = self.world.github_app
            handler, params = target.router.resolve(req.method, req.path)
            return handler(req, **params)
        except Problem as problem:
            body = _error_body(service, problem.status, problem.message, problem.errors)
            return Response(problem.status, body, dict(problem.headers))

    def serve(self, service: str, req: Request) -> Response:
        """Answer one API request, applying the world's faults, and record it."""
        world = self.world
        with world.lock:
            faults = {f.kind: f for f in world.faults_for(service, req.method, req.path)}
        if "hang" in faults:
            world.hang_release.wait(faults["hang"].seconds)
        if "latency" in faults:
            time.sleep(faults["latency"].seconds)
        pre = next((faults[k] for k in PRE_FAULTS if k in faults), None)
        with world.lock:
            if pre is not None:
                response = self._fault_response(service, pre)
            else:
                response = self._dispatch(service, req)
            lost = faults.get("lose") or faults.get("drop")
            if lost is not None and pre is None:
                response = Response(502, _error_body(service, 502, "bad gateway"))
            response.headers = {**self._common_headers(service), **response.headers}
            applied = pre or lost or next(iter(faults.values()), None)
            world.record(
                RecordedRequest(
                    service=service,
                    method=req.method,
                    path=req.path,
                    query=req.query,
                    status=0 if "drop" in faults and pre is None else response.status,
                    at=world.clock.now(),
                    fault=applied.kind if applied else None,
                )
            )
        if "drop" in faults and pre is None:
            raise ConnectionDropped(f"{req.method} {req.path}")
        if "drip" in faults:
            drip = faults["drip"]
            return DrippingResponse(
                **vars(response), seconds=drip.seconds, chunk=max(1, drip.chunk)
            )
        return response

    def serve_app(self, app: str) -> Response:
        """A simulated app's public URL: healthy (200) unless told otherwise by /app-health."""
        health = self.world.app_health_of(app)
        if health is None:
            return Response(404, {"error": f"no Fly app {app!r}"})
        if health["latency"]:
            time.sleep(health["latency"])
        status = int(health["status"])
        return Response(status, {"status": "ok" if status < 400 else "failing", "app": app})

    def serve_oauth(self, req: Request) -> Response:
        """GitHub's OAuth pages: the "sign in as" form and the code exchange."""
        with self.world.lock:
            try:
                handler, params = self.world.org.oauth_router.resolve(req.method, req.path)
                return handler(req, **params)
            except Problem as problem:
                return Response(problem.status, {"error": problem.message})

    # --- the control API -----------------------------------------------------------------

    def serve_control(self, req: Request) -> Response:
        try:
            handler, params = self.control.resolve(req.method, req.path)
            return handler(req, **params)
        except Problem as problem:
            return Response(problem.status, {"error": problem.message})
        except (TypeError, ValueError, KeyError) as exc:
            return Response(400, {"error": f"{type(exc).__name__}: {exc}"})

    def _control_routes(self) -> Router:
        router = Router()
        for method, pattern, handler in (
            ("GET", "/state", self.c_state),
            ("POST", "/reset", self.c_reset),
            ("GET", "/faults", self.c_faults),
            ("POST", "/faults", self.c_add_fault),
            ("DELETE", "/faults", self.c_clear_faults),
            ("POST", "/rate-limits", self.c_rate_limits),
            ("POST", "/health", self.c_health),
            ("POST", "/app-health", self.c_app_health),
            ("GET", "/clock", self.c_clock),
            ("POST", "/clock", self.c_advance),
            ("POST", "/pulls", self.c_open_pull),
            ("POST", "/pulls/{number:\\d+}/push", self.c_push),
            ("POST", "/pulls/{number:\\d+}/close", self.c_close),
            ("POST", "/releases", self.c_release),
            ("POST", "/machines/{machine_id}/config", self.c_edit_machine),
            ("POST", "/checks", self.c_check),
            ("POST", "/deployments", self.c_deployments),
            ("POST", "/branch-protection", self.c_protection),
            ("POST", "/security", self.c_security),
            ("POST", "/secret-scanning/alerts", self.c_add_alert),
            ("POST", "/secret-scanning/alerts/{number:\\d+}/resolve", self.c_resolve_alert),
            ("POST", "/secrets", self.c_age_secret),
            ("POST", "/machines", self.c_change_machine),
            ("POST", "/fly-apps", self.c_add_fly_app),
            ("POST", "/teams/{team}/members", self.c_team_add),
            ("DELETE", "/teams/{team}/members/{login}", self.c_team_remove),
            ("DELETE", "/teams/{team}", self.c_team_delete),
            ("POST", "/users/{login}/rename", self.c_user_rename),
            ("GET", "/webhook", self.c_webhook),
            ("POST", "/webhook", self.c_configure_webhook),
            ("GET", "/requests", self.c_requests),
            ("DELETE", "/requests", self.c_clear_requests),
            # The GitHub App (hotdash/sandbox/github_app.py).
            ("POST", "/github-app", self.c_register_github_app),
            ("POST", "/github-app/revoke-tokens", self.c_revoke_app_tokens),
            ("POST", "/github-app/repositories", self.c_installation_repositories),
        ):
            router.add(method, pattern, handler)
        return router

    def c_state(self, req: Request) -> Response:
        return Response(200, self.world.summary())

    def c_reset(self, req: Request) -> Response:
        self.world.reset()
        return Response(200, self.world.summary())

    def c_faults(self, req: Request) -> Response:
        with self.world.lock:
            return Response(200, [f.as_dict() for f in self.world.faults])

    def c_add_fault(self, req: Request) -> Response:
        options = dict(req.json())
        kind = options.pop("kind")
        return Response(201, self.world.add_fault(kind, **options).as_dict())

    def c_clear_faults(self, req: Request) -> Response:
        self.world.clear_faults()
        self.world.hang_release.set()
        self.world.hang_release.clear()
        return Response(200, [])

    def c_rate_limits(self, req: Request) -> Response:
        self.world.set_rate_limits(bool(req.json().get("enabled")))
        return Response(200, {"enabled": bool(req.json().get("enabled"))})

    def c_health(self, req: Request) -> Response:
        body = req.json()
        if "fail_next" in body:
            self.world.fail_next_images(int(body["fail_next"]))
        if "image" in body:
            self.world.mark_image(body["image"], healthy=bool(body.get("healthy", False)))
        with self.world.lock:
            return Response(
                200,
                {
                    "fail_next": self.world.fly.fail_next,
                    "broken": sorted(self.world.fly.broken_images),
                },
            )

    def c_app_health(self, req: Request) -> Response:
        body = dict(req.json())
        app = body.pop("app")
        try:
            return Response(200, {"app": app, **self.world.set_app_health(app, **body)})
        except KeyError as exc:
            raise Problem(404, str(exc.args[0])) from None

    def c_clock(self, req: Request) -> Response:
        with self.world.lock:
            return Response(200, {"now": self.world.clock.iso(), "epoch": self.world.clock.now()})

    def c_advance(self, req: Request) -> Response:
        self.world.advance(float(req.json().get("advance", 0)))
        return self.c_clock(req)

    def _activity(
        self, req: Request, action: Callable[..., dict[str, Any]], *args: Any
    ) -> Response:
        # "deliver": false records the event's delivery without sending it anywhere.
        options = dict(req.json())
        deliver = options.pop("deliver", True)
        webhook = self.world.webhook
        saved = (webhook.url, webhook.sink)
        if not deliver:
            webhook.url, webhook.sink = "", None
        try:
            result = action(*args, **options)
        finally:
            webhook.url, webhook.sink = saved
        return Response(201, json.loads(json.dumps(result, default=str)))

    def c_open_pull(self, req: Request) -> Response:
        return self._activity(
            req, lambda **o: self.world.open_pull(o.pop("title"), o.pop("branch"), **o)
        )

    def c_push(self, req: Request, number: str) -> Response:
        return self._activity(req, self.world.push_to_pull, int(number))

    def c_close(self, req: Request, number: str) -> Response:
        return self._activity(req, self.world.close_pull, int(number))

    def c_release(self, req: Request) -> Response:
        return self._activity(req, lambda **o: self.world.publish_release(o.pop("version"), **o))

    def c_edit_machine(self, req: Request, machine_id: str) -> Response:
        changes = req.json().get("config")
        if not isinstance(changes, dict):
            raise Problem(400, "config must be an object of the changes")
        return Response(
            200, {"id": machine_id, "config": self.world.edit_machine(machine_id, changes)}
        )

    def c_check(self, req: Request) -> Response:
        body = req.json()
        self.world.set_check(
            body["ref"],
            body["name"],
            body.get("status", "completed"),
            body.get("conclusion", "success"),
        )
        return Response(200, {"ok": True})

    def c_deployments(self, req: Request) -> Response:
        forced = [int(code) for code in req.json().get("next", [])]
        with self.world.lock:
            self.world.github.next_deployment_responses.extend(forced)
            return Response(200, {"next": self.world.github.next_deployment_responses})

    def c_protection(self, req: Request) -> Response:
        return Response(200, {"protection": self.world.change_protection(**req.json())})

    def c_security(self, req: Request) -> Response:
        features = {name: bool(on) for name, on in req.json().items()}
        return Response(200, self.world.set_security(**features))

    def c_add_alert(self, req: Request) -> Response:
        options = dict(req.json())
        return Response(201, self.world.add_secret_alert(options.pop("secret"), **options))

    def c_resolve_alert(self, req: Request, number: str) -> Response:
        self.world.resolve_secret_alert(int(number), req.json().get("resolution", "revoked"))
        return Response(200, {"ok": True})

    def c_age_secret(self, req: Request) -> Response:
        body = req.json()
        self.world.age_secret(body["where"], body["name"], float(body["age_days"]))
        return Response(200, {"ok": True})

    def c_change_machine(self, req: Request) -> Response:
        options = dict(req.json())
        return Response(200, self.world.change_machine(options.pop("app"), **options))

    def c_add_fly_app(self, req: Request) -> Response:
        body = req.json()
        self.world.add_demo_fly_app(body["name"], body.get("like", "production"))
        return Response(201, {"name": body["name"]})

    # --- the GitHub App -------------------------------------------------------------------

    def c_register_github_app(self, req: Request) -> Response:
        body = req.json()
        self.world.register_github_app(str(body["public_key"]), str(body["app_id"]))
        return Response(200, {"app_id": str(body["app_id"])})

    def c_revoke_app_tokens(self, req: Request) -> Response:
        with self.world.lock:
            return Response(200, {"revoked": self.world.github_app.revoke_tokens()})

    def c_installation_repositories(self, req: Request) -> Response:
        body = req.json()
        self.world.change_installation_repositories(
            add=list(body.get("add") or ()), remove=list(body.get("remove") or ())
        )
        with self.world.lock:
            names = self.world.github_app.installations[DEMO_INSTALLATION_ID]["repositories"]
            return Response(200, {"repositories": list(names)})

    def c_team_add(self, req: Request, team: str) -> Response:
        return self._team_change(self.world.team_add, team, req.json()["login"])

    def c_team_remove(self, req: Request, team: str, login: str) -> Response:
        return self._team_change(self.world.team_remove, team, login)

    def c_team_delete(self, req: Request, team: str) -> Response:
        return self._team_change(self.world.team_delete, team)

    def c_user_rename(self, req: Request, login: str) -> Response:
        return self._team_change(self.world.user_rename, login, str(req.json()["login"]))

    @staticmethod
    def _team_change(change: Callable[..., dict[str, Any]], *args: str) -> Response:
        try:
            return Response(200, change(*args))
        except KeyError as exc:
            raise Problem(404, str(exc.args[0])) from None

    def c_webhook(self, req: Request) -> Response:
        webhook = self.world.webhook
        return Response(
            200,
            {
                "url": webhook.url,
                "secret_set": bool(webhook.secret),
                "deliveries": [
                    {k: d[k] for k in ("id", "event", "action", "status")}
                    for d in webhook.deliveries
                ],
            },
        )

    def c_configure_webhook(self, req: Request) -> Response:
        body = req.json()
        if "url" in body:
            self.world.webhook.url = body["url"]
        if "secret" in body:
            self.world.webhook.secret = body["secret"]
        return self.c_webhook(req)

    def c_requests(self, req: Request) -> Response:
        service = req.arg("service")
        return Response(200, [r.as_dict() for r in self.world.calls(service=service)])

    def c_clear_requests(self, req: Request) -> Response:
        with self.world.lock:
            self.world.requests.clear()
        return Response(200, [])


def make_app(**world_options: Any) -> SandboxApp:
    """A sandbox over a fresh world (options go to :class:`World`)."""
    return SandboxApp(World(**world_options))
