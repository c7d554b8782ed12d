"""The sandbox's HTTP server keeps connections open between requests, as Fly's and GitHub's
APIs do, and closes them whenever keeping them would be wrong."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from hotdash.sandbox import SandboxApp, World, demo
from hotdash.sandbox.server import serve_in_thread


def _client(url: str, ports: list[int]) -> httpx.Client:
    """A client that notes the local port each response came in on (while it is open)."""

    def note(response: httpx.Response) -> None:
        stream = response.extensions["network_stream"]
        ports.append(stream.get_extra_info("client_addr")[1])

    return httpx.Client(
        base_url=url, headers={"Authorization": "Bearer test"}, event_hooks={"response": [note]}
    )


@pytest.fixture
def served() -> Iterator:
    servers = []

    def serve(app):
        server = serve_in_thread(app)
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_requests_share_one_connection(served):
    world = World()
    _, url = served(SandboxApp(world))
    ports: list[int] = []
    with _client(url, ports) as client:
        responses = [client.get("/fly/v1/apps/hot-dash/machines") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(r.http_version == "HTTP/1.1" for r in responses)
    assert len(ports) == 3
    assert len(set(ports)) == 1
    assert len(world.calls("GET", "/apps/hot-dash/machines")) == 3


def test_a_dropped_response_closes_the_connection_and_the_next_request_opens_another(served):
    world = World()
    _, url = served(SandboxApp(world))
    pulls = f"/github/repos/{demo.REPO_OWNER}/{demo.REPO_NAME}/pulls"
    ports: list[int] = []
    with _client(url, ports) as client:
        before = client.get(pulls)
        world.add_fault("drop", service="github", path="/pulls$", times=1)
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(pulls)
        after = client.get(pulls)

    assert (before.status_code, after.status_code) == (200, 200)
    assert len(ports) == 2
    assert ports[0] != ports[1]


def test_a_response_of_unknown_length_ends_its_connection(served):
    def streamed(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one ", b"two"])

    _, url = served(streamed)
    ports: list[int] = []
    with _client(url, ports) as client:
        first, second = client.get("/"), client.get("/")

    assert first.text == second.text == "one two"
    assert first.headers["connection"] == "close"
    assert len(ports) == 2
    assert ports[0] != ports[1]


def test_a_stopped_sandbox_answers_nothing_on_a_kept_connection(served):
    server, url = served(SandboxApp(World()))
    with _client(url, []) as client:
        assert client.get("/fly/v1/apps/hot-dash").status_code == 200
        server.shutdown()
        server.server_close()
        with pytest.raises(httpx.TransportError):
            client.get("/fly/v1/apps/hot-dash")
