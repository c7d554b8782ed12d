"""Serve the sandbox over real HTTP with a threaded wsgiref server (stdlib only)."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from .app import ConnectionDropped, SandboxApp


class _ServerHandler(ServerHandler):
    http_version = "1.1"
    failed = False
    sized = False  # the response said its length, so the connection can carry another

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        self.sized = "Content-Length" in self.headers
        if not self.sized:
            self.headers["Connection"] = "close"

    def handle_error(self) -> None:
        self.failed = True
        # A "drop" fault: say nothing; the connection is closed after this request.
        if isinstance(sys.exc_info()[1], ConnectionDropped):
            return
        super().handle_error()


class _RequestHandler(WSGIRequestHandler):
    """Keeps connections open between requests (HTTP/1.1), as Fly's and GitHub's APIs do, so
    a client's connection pool behaves here as it does against them."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # wsgiref writes a response in pieces
    quiet = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        if not self.quiet:
            super().log_message(format, *args)

    def handle(self) -> None:
        self.server.track(self.connection)
        try:
            self.close_connection = False
            while not self.close_connection:
                self.handle_one_request()
        finally:
            self.server.untrack(self.connection)

    def handle_one_request(self) -> None:
        # WSGIRequestHandler.handle for one request, with a handler that can drop the
        # connection; anything but a complete response of known length closes it.
        self.close_connection = True
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self
        handler.run(self.server.get_app())
        if handler.failed or not handler.sized:
            self.close_connection = True


class SandboxServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def track(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(connection)

    def server_close(self) -> None:
        """Stop listening and end the kept-alive connections: a stopped sandbox answers
        nothing, also on a client's pooled connection."""
        super().server_close()
        with self._open_lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._open.clear()


def make_server(
    app: SandboxApp, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
) -> SandboxServer:
    """A threaded HTTP server for ``app`` (port 0 picks a free port: see ``server_port``)."""
    handler = type("Handler", (_RequestHandler,), {"quiet": quiet})
    server = SandboxServer((host, port), handler)
    server.set_app(app)
    return server


def serve_in_thread(app: SandboxApp, host: str = "127.0.0.1", port: int = 0) -> SandboxServer:
    """Start serving in a daemon thread; stop with ``server.shutdown(); server.server_close()``."""
    server = make_server(app, host, port)
    threading.Thread(target=server.serve_forever, name="sandbox", daemon=True).start()
    return server
