"""The production recipe, run: collectstatic (the image build), the release command, then
fly.toml's web, two workers and beat with production settings. A deploy is requested and
approved over HTTP and succeeds; the workers are stopped mid-rollout and replaced without
losing it; SIGTERM stops everything cleanly with nothing left running."""

from __future__ import annotations

import re
import time
from collections import Counter

import httpx
import psycopg
import pytest

from deployments.engine.lease import OPEN_STATES
from tests.engine.test_workers import updates_per_machine, wait_for
from tests.production.conftest import FLY_TOML, PUBLIC_HOST, Recipe

pytestmark = [pytest.mark.postgres, pytest.mark.worker]

# What the TLS proxy adds to every request it passes on.
PROXIED = {"Host": PUBLIC_HOST, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
FAST_HEALTH = (
    "from deployments.models import Environment; from tests.engine.conftest import fast_health; "
    "fast_health(Environment.objects.get(app__name='hot-dash', name='production'))"
)


def healthy(recipe: Recipe) -> bool:
    """What Fly's check sees: the machine's own address as Host, plain HTTP."""
    try:
        response = httpx.get(f"{recipe.url}/health", timeout=2)
    except httpx.TransportError:
        return False
    return response.status_code == 200


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """name → the whole Set-Cookie line (httpx keeps Secure cookies off plain-HTTP URLs, so
    the test carries them itself)."""
    lines = response.headers.get_list("set-cookie")
    return {line.split("=", 1)[0]: line for line in lines}


def cookie_value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1]


def sign_in(web: httpx.Client, username: str, password: str) -> str:
    """The login form with its CSRF cookie, as a browser would; returns the session id."""
    form = web.get("/accounts/login/")
    assert form.status_code == 200, form.text[:500]
    csrf_line = set_cookies(form)["csrftoken"]
    assert "Secure" in csrf_line
    csrf = cookie_value(csrf_line)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    signed_in = web.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={
            "Cookie": f"csrftoken={csrf}",
            "Referer": f"https://{PUBLIC_HOST}/accounts/login/",
        },
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    session_line = set_cookies(signed_in)["sessionid"]
    assert "Secure" in session_line and "HttpOnly" in session_line
    return cookie_value(session_line)


def assert_static_files_served(web: httpx.Client, page: str) -> None:
    """WhiteNoise serves collectstatic's hashed, compressed files, cached for good."""
    stylesheet = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', page)
    assert stylesheet, "no hashed stylesheet on the page"
    response = web.get(stylesheet.group(1), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]


def deploy_state(api: httpx.Client, deploy_id: int) -> dict:
    response = api.get(f"/api/v1/deploys/{deploy_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_recipe_serves_deploys_and_stops_cleanly(recipe: Recipe):
    # The image build, then what every `fly deploy` runs before updating any machine.
    recipe.run("python manage.py collectstatic --noinput")
    recipe.run(FLY_TOML["deploy"]["release_command"])
    # An operator's one-off setup: the demo world, fast health checks, two API tokens.
    recipe.run("python manage.py seed_demo")
    recipe.run(f'python manage.py shell -c "{FAST_HEALTH}"')
    alice_token = recipe.run("python manage.py create_api_token alice").strip()
    bob_token = recipe.run("python manage.py create_api_token bob").strip()

    web = recipe.start("web", "web")
    workers = [recipe.start("worker", f"worker-{n}") for n in (1, 2)]
    beat = recipe.start("beat", "beat")
    wait_for(lambda: healthy(recipe) or not web.running(), timeout=60, what="/health")
    assert web.running(), recipe.tails()

    alice = {"Authorization": f"Bearer {alice_token}"}
    bob = {"Authorization": f"Bearer {bob_token}"}
    with (
        httpx.Client(base_url=recipe.url, headers=PROXIED, timeout=10) as client,
        httpx.Client(base_url=recipe.url, headers={**PROXIED, **bob}, timeout=10) as api,
    ):
        # Without the proxy's X-Forwarded-Proto a request is plain HTTP: sent to HTTPS.
        plain = httpx.get(f"{recipe.url}/accounts/login/", headers={"Host": PUBLIC_HOST})
        assert plain.status_code == 301
        assert plain.headers["location"] == f"https://{PUBLIC_HOST}/accounts/login/"
        session = sign_in(client, "alice", recipe.env["DEMO_PASSWORD"])
        overview = client.get("/", headers={"Cookie": f"sessionid={session}"})
        assert overview.status_code == 200
        assert "alice" in overview.text
        assert_static_files_served(client, overview.text)

        requested = client.post(
            "/api/v1/deploys",
            headers=alice,
            json={
                "app": "hot-dash",
                "environment": "production",
                "version": "1.3.0",
                "reason": "ship the production recipe",
            },
        )
        assert requested.status_code == 201, requested.text
        deploy = requested.json()
        assert deploy["state"] == "awaiting_approval"
        assert deploy["approval"]["required"] == 1
        approved = client.post(
            f"/api/v1/deploys/{deploy['id']}/decisions",
            headers=bob,
            json={"decision": "approve", "comment": "lgtm"},
        )
        assert approved.status_code == 201, approved.text

        # Both workers stop while the rollout is under way: each finishes what it is running,
        # hands its queued messages back and exits 0. The deploy is neither lost nor finished.
        wait_for(
            lambda: deploy_state(api, deploy["id"])["state"] in ("running", "verifying"),
            timeout=60,
            what="the rollout to start",
        )
        for worker in workers:
            worker.terminate()
        assert [worker.wait() for worker in workers] == [0, 0], recipe.tails()
        assert all("Warm shutdown" in worker.log() for worker in workers)
        assert deploy_state(api, deploy["id"])["state"] in ("running", "verifying")

        # The platform restarts them (restart policy "always"); the deploy carries on.
        workers = [recipe.start("worker", f"worker-{n}-restarted") for n in (1, 2)]
        wait_for(
            lambda: deploy_state(api, deploy["id"])["state"] not in OPEN_STATES,
            timeout=180,
            what="the deploy to finish after the restart",
        )
        finished = deploy_state(api, deploy["id"])
    assert finished["state"] == "succeeded", (finished["error"], recipe.tails())

    # Fly saw each machine updated to the approved image exactly once.
    machines = recipe.sandbox.world.fly.summary()["hot-dash"]
    assert {m["image"] for m in machines} == {finished["image_ref"]}
    assert updates_per_machine(recipe.sandbox) == Counter({m["id"]: 1 for m in machines})

    # SIGTERM to everything at once, as a machine stop does: each exits 0, in bounded time.
    everything = [web, *workers, beat]
    for process in everything:
        process.terminate()
    started = time.monotonic()
    codes = {process.name: process.wait() for process in everything}
    assert codes == dict.fromkeys(codes, 0), recipe.tails()
    assert time.monotonic() - started < 60
    with psycopg.connect(recipe.env["DATABASE_URL"]) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM deployments_deploy GROUP BY state"))
    assert not set(states) & set(OPEN_STATES), states
    # The audit chain the three kinds of process wrote holds under the production key.
    recipe.run("python manage.py audit_verify")
