"""Concurrent audit writers for the tests: threads on their own database connections."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def write_concurrently(body: Callable[[int], None], *, writers: int = 8) -> None:
    """Run ``body(worker)`` in ``writers`` threads released together, each on its own
    connection (closed when done); fail with the first error any of them raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def run(worker: int) -> None:
        try:
            start.wait()
            body(worker)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
