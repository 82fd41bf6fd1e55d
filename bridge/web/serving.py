"""Binding werkzeug's development server without its own failure handling.

werkzeug's ``make_server`` and ``run_simple`` print "Address already in use" and a hint on two
lines and exit the process when the port is taken. Here the socket is bound first, so that a
busy port is an ``OSError`` the command turns into one line (:func:`port_problem`), and
:func:`port_problem` lets a command check the port before it creates anything.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

from werkzeug.serving import (
    BaseWSGIServer,
    WSGIRequestHandler,
    get_sockaddr,
    make_server,
    select_address_family,
)

from bridge.i18n import Texts


def bind_server(host: str, port: int, app: Callable[..., Any],
                handler: type[WSGIRequestHandler] | None = None) -> BaseWSGIServer:
    """A threaded server for ``app``, bound (port 0 = a free port), not serving yet, with
    werkzeug's request handler or ``handler``. Raises ``OSError`` when the address cannot be
    bound."""
    family = select_address_family(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(get_sockaddr(host, port, family))
        sock.listen(128)
        # werkzeug serves a duplicate of the descriptor; this one is closed on leaving.
        return make_server(host, port, app, threaded=True, request_handler=handler,
                           fd=sock.fileno())


def cannot_serve(host: str, port: int, exc: OSError, language: str = "en") -> str:
    """One line saying why ``host:port`` cannot be served, naming the port, in ``language``
    (the system's reason other than a busy port is the C library's English)."""
    address = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return Texts(language).gettext(
            "cannot serve on %(address)s: port %(port)s is already in use (another process "
            "listens there; stop it or choose another --port)", address=address, port=port)
    return f"cannot serve on {host}:{port}: {exc.strerror or exc}"


def port_problem(host: str, port: int, language: str = "en") -> str | None:
    """None when ``host:port`` can be bound now (port 0 always can), else :func:`cannot_serve`'s
    line. The port is released at once: a command checks it before creating anything."""
    if port == 0:
        return None
    family = select_address_family(host, port)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(get_sockaddr(host, port, family))
    except OSError as exc:
        return cannot_serve(host, port, exc, language)
    return None
