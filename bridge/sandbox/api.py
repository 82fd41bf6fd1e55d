"""The sandbox's ``includes/api.php``: WHMCS's External API over a :class:`Sandbox`.

``POST /includes/api.php`` with form fields; ``action`` names the command (any case).
Checks run in this order: the IP allow-list (tblconfiguration ``APIAllowedIPs``; skipped when
``accesskey`` matches the sandbox's), the credential (``identifier``/``secret``, or the same
pair as ``username``/``password``), that the action exists, that one of the credential's API
roles allows it. Every answer is JSON with HTTP 200 — errors too, as ``{"result": "error",
"message": ...}`` with WHMCS's wording, or ``{"status": "error", "message": ...}`` without a
``result`` key where WHMCS 8 answers so (GetInvoice for a missing id). ``responsetype`` is
accepted but the answer is always JSON (XML and NVP are not emulated).

The fault switch (``sandbox.faults``) makes the next calls answer HTTP 500, answer late, or
answer an HTML error page, as a real WHMCS behind a web server sometimes does.

The admin and client area pages vipgate shows itself on are :mod:`bridge.sandbox.pages`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from bridge.sandbox.actions_common import ACTIONS, Params, StatusError, registered_actions
from bridge.sandbox.core import WhmcsError
from bridge.sandbox.faults import Fault
from bridge.sandbox.pages import register_pages

if TYPE_CHECKING:
    from bridge.sandbox.whmcs import Sandbox

SERVER_ERROR_PAGE = ("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n"
                     "<title>500 Internal Server Error</title>\n</head><body>\n"
                     "<h1>Internal Server Error</h1>\n<p>The server encountered an internal "
                     "error or misconfiguration and was unable to complete your request.</p>\n"
                     "</body></html>\n")
WHMCS_ERROR_PAGE = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
                    "<title>Oops! Something went wrong.</title></head>\n<body>\n"
                    "<div class=\"error-container\"><h1>Oops!</h1><h2>Something went wrong "
                    "and we couldn't process your request.</h2><p>Please go back to the "
                    "previous page and try again.</p></div>\n</body>\n</html>\n")


def create_sandbox_app(sandbox: Sandbox) -> Flask:
    registered_actions()  # import every action module
    app = Flask("bridge.sandbox")
    app.config["SANDBOX"] = sandbox

    @app.post("/includes/api.php")
    def api_php() -> Response:
        return answer(sandbox, Params(request.form), request.remote_addr or "")

    register_pages(app, sandbox)  # the admin and client area pages vipgate shows itself on

    @app.get("/")
    def index() -> Response:
        return Response("vipgate sandbox WHMCS: POST /includes/api.php\nactions: "
                        + ", ".join(registered_actions()) + "\npages: "
                        "/admin/clientssummary.php?userid=N, "
                        "/admin/supporttickets.php?action=view&id=N, /clientarea.php?uid=N, "
                        "/submitticket.php?uid=N[&step=2&deptid=D]\n", mimetype="text/plain")

    return app


def answer(sandbox: Sandbox, params: Params, ip: str) -> Response:
    action = params.get("action")
    fault = sandbox.faults.take(action)
    if fault is not None:
        faulty = _fault_response(sandbox, fault)
        if faulty is not None:
            _log(sandbox, action, params, ip, "fault", fault.kind)
            return faulty
    body = dispatch(sandbox, params, ip)
    _log(sandbox, action, params, ip, body.get("result") or body.get("status", ""),
         body.get("message", ""))
    return Response(json.dumps(body), status=200, mimetype="application/json")


def _fault_response(sandbox: Sandbox, fault: Fault) -> Response | None:
    if fault.kind == "slow":
        sandbox.faults.sleep(fault.seconds)
        return None  # then answer normally
    if fault.kind == "html":
        return Response(WHMCS_ERROR_PAGE, status=fault.status, mimetype="text/html")
    return Response(SERVER_ERROR_PAGE, status=fault.status, mimetype="text/html")


def dispatch(sandbox: Sandbox, params: Params, ip: str) -> dict[str, Any]:
    """The JSON document for one API call.

    Authentication answers as WHMCS 8 does (whmcs-reference §2.1, §6): an ``accesskey`` that
    is sent and wrong is "Invalid Access Key"; without one, an IP off the allow-list is
    "Invalid IP <ip>"; a missing or wrong identifier/secret is "Invalid or missing
    credentials"; a credential that is not an admin's API credential is "Access Denied"; one
    whose administrator is disabled, "Administrator Account Disabled"; a role without the
    action, "Invalid Permissions: ...".
    """
    action = params.get("action").strip()
    accesskey = params.get("accesskey")
    if accesskey and accesskey != sandbox.accesskey:
        return error("Invalid Access Key")
    key_ok = bool(sandbox.accesskey) and accesskey == sandbox.accesskey
    identifier = params.get("identifier") or params.get("username")
    secret = params.get("secret") or params.get("password")
    access = sandbox.api_access(identifier, secret, ip, check_ip=not key_ok)
    if isinstance(access, str):
        return error(access)
    entry = ACTIONS.get(action.lower())
    if entry is None:
        return error("Command Not Found")
    if action.lower() not in access.allowed:
        return error(f'Invalid Permissions: API action "{action.lower()}" is not allowed')
    try:
        with sandbox.as_admin(access.admin):
            return {"result": "success", **entry[1](sandbox, params)}
    except StatusError as exc:
        return {"status": "error", "message": exc.message}
    except WhmcsError as exc:
        return error(exc.message)


def error(message: str) -> dict[str, str]:
    return {"result": "error", "message": message}


def _log(sandbox: Sandbox, action: str, params: Params, ip: str, result: str,
         message: str) -> None:
    sandbox.api_log.append({"at": sandbox.now.isoformat(sep=" "), "ip": ip, "action": action,
                            "params": params.public(), "result": result, "message": message})
