"""Serving the sandbox WHMCS over HTTP (werkzeug's server; for the demo and tests only)."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

from bridge.sandbox.api import create_sandbox_app
from bridge.sandbox.whmcs import Sandbox
from bridge.web.serving import bind_server


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler, keeping the connection open for the client's next request
    (HTTP/1.1 keep-alive), as the Apache or nginx in front of a real WHMCS does; werkzeug's own
    answers every request with ``Connection: close``, so each API call cost a new connection
    and a new server thread. The request's body is read whole before the app sees it, so the
    next request starts where this one ended whatever the app read; a chunked body, or a
    client asking to close, closes as before. The server keeps its open connections
    (``open_connections``) so that stopping it can close them (:meth:`RunningSandbox.stop`):
    a client must find the sandbox down, not its old connection still answered."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with _OPEN_LOCK:
            _open_connections(self.server).add(self.connection)

    def finish(self) -> None:
        with _OPEN_LOCK:
            _open_connections(self.server).discard(self.connection)
        super().finish()

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        self.keep_open = not self.close_connection and not environ.get(
            "wsgi.input_terminated")  # a chunked body: werkzeug reads it as it goes
        if self.keep_open:
            length = str(environ.get("CONTENT_LENGTH") or "")
            size = int(length) if length.isdigit() else 0
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(size) if size else b"")
            # werkzeug drains "what is left" of the request after answering, reading until the
            # socket's end (it closes every connection): here that would be the next request.
            # The body was read whole above; the drain reads an empty stream instead.
            self._socket_rfile: Any = self.rfile
            self.rfile = io.BytesIO()
        return environ

    def handle_one_request(self) -> None:
        self._socket_rfile = None
        try:
            super().handle_one_request()
        finally:
            if self._socket_rfile is not None:
                self.rfile, self._socket_rfile = self._socket_rfile, None

    def send_header(self, keyword: str, value: str) -> None:
        if (keyword.lower() == "connection" and value.lower() == "close"
                and getattr(self, "keep_open", False)):
            return  # werkzeug closes after every answer; this connection stays open
        super().send_header(keyword, value)


_OPEN_LOCK = threading.Lock()


def _open_connections(server: Any) -> set[socket.socket]:
    found: set[socket.socket] | None = getattr(server, "open_connections", None)
    if found is None:
        found = server.open_connections = set()
    return found


def make_sandbox_server(sandbox: Sandbox, host: str = "127.0.0.1",
                        port: int = 8081) -> BaseWSGIServer:
    """A threaded server for ``/includes/api.php`` (connections kept alive:
    :class:`KeepAliveHandler`), bound (port 0 = a free port), not serving yet. Raises OSError
    when the address cannot be bound (werkzeug alone would print two lines and exit)."""
    return bind_server(host, port, create_sandbox_app(sandbox), KeepAliveHandler)


def close_connections(server: BaseWSGIServer) -> None:
    """Close every connection the server keeps open (its threads see the end and finish)."""
    with _OPEN_LOCK:
        open_now = list(_open_connections(server))
    for connection in open_now:
        with contextlib.suppress(OSError):  # closed meanwhile
            connection.shutdown(socket.SHUT_RDWR)


def server_url(server: BaseWSGIServer) -> str:
    """The WHMCS base URL of a bound server (a wildcard address is shown as loopback)."""
    host = server.host
    if host in ("", "0.0.0.0"):  # noqa: S104 (shown, not bound)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def serve_sandbox(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8081, *,
                  ready: Callable[[str], None] | None = None) -> None:
    """Serve ``/includes/api.php`` until interrupted (blocks). ``ready(url)`` is called once
    the port is bound, with the WHMCS base URL (useful with port 0)."""
    server = make_sandbox_server(sandbox, host, port)
    try:
        if ready is not None:
            ready(server_url(server))
        server.serve_forever()
    finally:
        server.server_close()
        close_connections(server)


@dataclass
class RunningSandbox:
    """A sandbox served in a background thread; ``url`` is the WHMCS base URL (the API is at
    ``url + "/includes/api.php"``)."""

    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return server_url(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        close_connections(self.server)  # kept-alive connections end with the server
        self.thread.join(timeout=5)


def start_sandbox(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Serve in a daemon thread (port 0 = a free port) and return at once."""
    server = make_sandbox_server(sandbox, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="sandbox-whmcs", daemon=True)
    thread.start()
    return RunningSandbox(server, thread)
