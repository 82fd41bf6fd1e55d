"""Serving the sandbox WHMCS over HTTP (werkzeug's server; for the demo and tests only)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer

from bridge.sandbox.api import create_sandbox_app
from bridge.sandbox.whmcs import Sandbox
from bridge.web.serving import bind_server


def make_sandbox_server(sandbox: Sandbox, host: str = "127.0.0.1",
                        port: int = 8081) -> BaseWSGIServer:
    """A threaded server for ``/includes/api.php``, bound (port 0 = a free port), not serving
    yet. Raises OSError when the address cannot be bound (werkzeug alone would print two
    lines and exit)."""
    return bind_server(host, port, create_sandbox_app(sandbox))


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
        self.thread.join(timeout=5)


def start_sandbox(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Serve in a daemon thread (port 0 = a free port) and return at once."""
    server = make_sandbox_server(sandbox, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="sandbox-whmcs", daemon=True)
    thread.start()
    return RunningSandbox(server, thread)
