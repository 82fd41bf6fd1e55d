"""Serving the sandbox WHMCS over HTTP (werkzeug's server; for the demo and tests only)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, make_server

from bridge.sandbox.api import create_sandbox_app
from bridge.sandbox.whmcs import Sandbox


def serve_sandbox(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve ``/includes/api.php`` until interrupted (blocks)."""
    server = make_server(host, port, create_sandbox_app(sandbox), threaded=True)
    try:
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
        return f"http://{self.server.host}:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_sandbox(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
    """Serve in a daemon thread (port 0 = a free port) and return at once."""
    server = make_server(host, port, create_sandbox_app(sandbox), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="sandbox-whmcs", daemon=True)
    thread.start()
    return RunningSandbox(server, thread)
