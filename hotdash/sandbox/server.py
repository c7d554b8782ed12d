"""Serve the sandbox over real HTTP with a threaded wsgiref server (stdlib only)."""

from __future__ import annotations

import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from .app import ConnectionDropped, SandboxApp


class _ServerHandler(ServerHandler):
    def handle_error(self) -> None:
        # A "drop" fault: say nothing; the server closes the connection after this request.
        if isinstance(sys.exc_info()[1], ConnectionDropped):
            return
        super().handle_error()


class _RequestHandler(WSGIRequestHandler):
    quiet = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        if not self.quiet:
            super().log_message(format, *args)

    def handle(self) -> None:
        # WSGIRequestHandler.handle, with a handler that can drop the connection.
        self.raw_requestline = self.rfile.readline(65537)
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


class SandboxServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


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
