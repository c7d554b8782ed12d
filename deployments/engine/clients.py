"""API clients shared by the run messages of a worker process."""

from __future__ import annotations

import os
import threading
from typing import Any

from hotdash.integrations.http import (
    ApiClient,
    Credentials,
    Provider,
    build_client,
    transport_override,
)

_clients: dict[str, tuple[tuple[Any, ...], ApiClient]] = {}
_clients_lock = threading.Lock()


def api_client(provider: Provider, *, base_url: str, token: str | Credentials) -> ApiClient:
    """This process's client for ``provider``, reused by every run message so that its
    connections stay open between them. Another URL, token or
    test transport (use_transport), or a forked child, gets a freshly built one. Credentials
    are compared by value (a fixed token) or identity (one repository's App installation)."""
    pid, override = os.getpid(), transport_override()
    with _clients_lock:
        cached = _clients.get(provider.name)
        if cached is not None:
            (cached_pid, cached_url, cached_token, cached_override), client = cached
            if (cached_pid, cached_url, cached_token) == (pid, base_url, token) and (
                cached_override is override
            ):
                return client
            if cached_pid == pid:  # a forked child must not close its parent's connections
                client.close()
        client = build_client(provider, base_url=base_url, token=token)
        _clients[provider.name] = ((pid, base_url, token, override), client)
        return client


def deploy_clients_close() -> None:
    """Close this process's shared API clients (on worker shutdown)."""
    with _clients_lock:
        for (pid, *_), client in _clients.values():
            if pid == os.getpid():
                client.close()
        _clients.clear()
