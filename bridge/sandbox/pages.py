"""The sandbox's WHMCS pages where vipgate shows itself: minimal, server-rendered stand-ins for
the admin area's client summary and ticket view and the client area's home and Open Ticket
pages. Each fires the hook WHMCS fires there and puts the hook's answer where WHMCS does.

- ``GET /admin/clientssummary.php?userid=N``: the client's name, company, status and group,
  then the AdminAreaClientSummaryPage output.
- ``GET /admin/supporttickets.php?action=view&id=N``: the ticket's mask, subject, department,
  priority, status and client, then the AdminAreaViewTicketPage output.
- ``GET /clientarea.php?uid=N``: the client area home, with the ClientAreaHomepage output;
  ``POST`` runs ClientAreaHomepage with the posted form as ``$_POST`` (``__post__``: the
  banner's trust unlock button posts ``vipgate_action``, ``vipgate_token`` and WHMCS's CSRF
  ``token``). The page's ``token`` variable is the client's CSRF token
  (:func:`csrf_token`), as WHMCS's templates have it.
- Addons > MODULE (``admin/addonmodules.php?module=MODULE``): :func:`render_addon_page` frames
  what the module's output function echoed (run by php, ``php/addon.php``; not served here).
- ``GET /submitticket.php?uid=N[&step=2&deptid=D]``: step 1 lists the departments (links to
  step 2), step 2 is the form with a department ``<select>``; both run
  ClientAreaPageSubmitTicket, merge the template variables it returns over the page's (later
  wins) and show ``vipgate_notice`` above the departments. ``POST`` submits the form as the
  client area does (:meth:`Sandbox.submit_ticket_form`: TicketOpenValidation with the raw
  form field ``urgency``, then TicketOpen).

The sandbox has no client login: ``uid`` picks the client whose PHP session the client-area
hooks run in (``__session__`` = ``{"uid": id, "Language": name}``, which the forwarder moves
into ``$_SESSION``). The language name is ``tblclients.language``, else the system default
(tblconfiguration ``Language``, else ``english``).

As in WHMCS, hook output is inserted raw (the bridge escapes what it puts in); every value the
sandbox itself puts in (names, subjects, department names) is escaped by Jinja's autoescape
(the templates are in ``bridge/sandbox/templates/``).
Bad or unknown ids answer 404 with a page naming the problem (:class:`PageNotFound` in the
Python API: :func:`render_client_summary`, :func:`render_ticket_view`,
:func:`render_client_home`, :func:`submit_ticket_vars`, :func:`render_submit_ticket`;
:func:`hook_output` takes the hooks' part out of a rendered page).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, Response, request
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from bridge.whmcs.schema import tblticketdepartments

if TYPE_CHECKING:
    from bridge.sandbox.whmcs import Sandbox

DEFAULT_LANGUAGE = "english"
DEFAULT_SYSTEM_URL = "http://localhost/"
SESSION_COOKIE = "sandbox_uid"  # the client-area client a form posted without uid is for

class PageNotFound(LookupError):
    """A page asked for a bad or unknown id; the message names the problem."""


@cache
def _templates() -> Environment:
    """The pages' templates (``bridge/sandbox/templates/``), autoescaped."""
    return Environment(loader=PackageLoader("bridge.sandbox", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _render(name: str, **context: Any) -> str:
    return _templates().get_template(name).render(**context)


def _id(value: Any, what: str) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise PageNotFound(f"Invalid {what}: {value!r}") from None
    if number <= 0:
        raise PageNotFound(f"Invalid {what}: {value!r}")
    return number


def _client(sandbox: Sandbox, userid: Any) -> dict[str, Any]:
    client_id = _id(userid, "client id")
    row = sandbox.client(client_id)
    if row is None:
        raise PageNotFound(f"Client ID Not Found: {client_id}")
    return row


def _html(returns: list[Any]) -> Markup:
    """What HTML hooks returned, concatenated raw as WHMCS does."""
    return Markup("".join(value for value in returns if isinstance(value, str)))  # noqa: S704


def client_language(sandbox: Sandbox, client: Mapping[str, Any]) -> str:
    """The client's language name (``portuguese-br``, ``english``): tblclients.language, else
    the system default."""
    return str(client["language"] or sandbox.setting("Language") or DEFAULT_LANGUAGE)


def _session(sandbox: Sandbox, client: Mapping[str, Any]) -> dict[str, Any]:
    return {"uid": int(client["id"]), "Language": client_language(sandbox, client)}


def departments(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Every non-hidden ticket department, in WHMCS's order: {id, name, description}."""
    table = tblticketdepartments
    with sandbox.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.name, table.c.description)
                            .where(table.c.hidden != "on")
                            .order_by(table.c.order, table.c.id)).mappings()
        return [{"id": int(r["id"]), "name": r["name"], "description": r["description"]}
                for r in rows]


def hook_output(page: str, element_id: str = "hook-output") -> str:
    """What the hooks put into a rendered page: the inner HTML of its container
    (``vipgate-notice`` on the Open Ticket page)."""
    start = re.search(rf'<div[^>]*\bid="{element_id}"[^>]*>', page)
    if start is None:
        return ""
    depth = 1
    for tag in re.finditer(r"<(/?)div\b[^>]*>", page[start.end():]):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return page[start.end():start.end() + tag.start()]
    return page[start.end():]


# --- admin area ---------------------------------------------------------------------------


def render_client_summary(sandbox: Sandbox, userid: Any) -> str:
    """The admin area's client summary of client ``userid``."""
    client = _client(sandbox, userid)
    group = sandbox.group(int(client["groupid"])) if client["groupid"] else None
    output = sandbox.run_hook("AdminAreaClientSummaryPage", {"userid": int(client["id"])})
    return _render("client_summary.html", area="Admin Area", title="Client Summary",
                   client=client, group=group["groupname"] if group else "None",
                   hook_output=_html(output))


def render_ticket_view(sandbox: Sandbox, ticketid: Any) -> str:
    """The admin area's view of ticket ``ticketid``."""
    ticket_id = _id(ticketid, "ticket id")
    ticket = sandbox.ticket(ticket_id)
    if ticket is None:
        raise PageNotFound(f"Ticket ID Not Found: {ticket_id}")
    client = sandbox.client(int(ticket["userid"])) if ticket["userid"] else None
    who = (f"{client['firstname']} {client['lastname']} (#{client['id']})" if client
           else f"{ticket['name']} <{ticket['email']}> (not a client)")
    dept = next((d["name"] for d in departments(sandbox) if d["id"] == int(ticket["did"])),
                f"department {ticket['did']}")
    output = sandbox.run_hook("AdminAreaViewTicketPage", {"ticketid": ticket_id})
    return _render("ticket_view.html", area="Admin Area", title=f"#{ticket['tid']} - "
                   f"{ticket['title']}", ticket=ticket, client=who, department=dept,
                   hook_output=_html(output))


def render_addon_page(module: str, output: str) -> str:
    """Addons > ``module`` in the admin area: what the module's ``_output`` function echoed
    (run by php: ``bridge/sandbox/php/addon.php``), inserted raw as WHMCS does."""
    return _render("addon_module.html", area="Admin Area", title=f"Addons > {module}",
                   output=Markup(output))  # noqa: S704


# --- client area --------------------------------------------------------------------------


def csrf_token(client_id: int) -> str:
    """The CSRF token of the client's session (WHMCS's ``token`` template variable): the
    sandbox's stands in with one fixed per client."""
    return hashlib.sha1(f"sandbox-csrf-{client_id}".encode()).hexdigest()  # noqa: S324


def render_client_home(sandbox: Sandbox, uid: Any,
                       form: Mapping[str, str] | None = None) -> str:
    """The client area's home page of client ``uid`` (standing in for a logged-in client);
    ``form``: posted to it (the hook sees it as ``$_POST``). A form whose ``token`` is not the
    session's is refused as WHMCS refuses it, before any hook runs."""
    client = _client(sandbox, uid)
    variables: dict[str, Any] = {"__session__": _session(sandbox, client),
                                 "token": csrf_token(int(client["id"]))}
    if form is not None:
        if form.get("token") != variables["token"]:
            raise PageNotFound("Invalid CSRF Protection Token")
        variables["__post__"] = dict(form)
    output = sandbox.run_hook("ClientAreaHomepage", variables)
    return _render("client_home.html", area="Client Area", title="Client Area", client=client,
                   hook_output=_html(output), submit_url=f"submitticket.php?uid={client['id']}")


def submit_ticket_vars(sandbox: Sandbox, uid: Any, step: Any = 1, deptid: Any = None, *,
                       systemurl: str | None = None) -> dict[str, Any]:
    """submitticket.php's template variables for client ``uid`` after
    ClientAreaPageSubmitTicket: the page's own, with what the hook functions returned merged
    over them in order (later wins)."""
    client = _client(sandbox, uid)
    if str(step) not in ("1", "2"):
        raise PageNotFound(f"Invalid step: {step!r} (1 or 2)")
    offered = departments(sandbox)
    variables: dict[str, Any] = {
        "companyname": sandbox.setting("CompanyName") or "Sandbox WHMCS",
        "systemurl": systemurl or sandbox.setting("SystemURL") or DEFAULT_SYSTEM_URL,
        "charset": "utf-8", "pagetitle": "Open Ticket", "filename": "submitticket",
        "template": "twenty-one", "language": client_language(sandbox, client),
        "loggedin": True,
        "clientsdetails": {"userid": int(client["id"]), "id": int(client["id"]),
                           "firstname": client["firstname"], "lastname": client["lastname"],
                           "email": client["email"], "language": client["language"]},
        "step": int(step)}
    if int(step) == 2:
        dept = _id(deptid, "department id")
        if dept not in {d["id"] for d in offered}:
            raise PageNotFound(f"Department ID Not Found: {dept}")
        variables["deptid"] = dept
    variables["departments"] = offered
    returns = sandbox.run_hook("ClientAreaPageSubmitTicket", {
        **variables, "__session__": _session(sandbox, client)})
    for extra in returns:
        if isinstance(extra, Mapping):
            variables.update(extra)
    return variables


def render_submit_ticket(sandbox: Sandbox, uid: Any, step: Any = 1, deptid: Any = None, *,
                         systemurl: str | None = None, form: Mapping[str, str] | None = None,
                         errors: list[str] | None = None, opened: str | None = None) -> str:
    """submitticket.php: step 1 (departments) or 2 (the form, refilled from ``form``)."""
    variables = submit_ticket_vars(sandbox, uid, step, deptid, systemurl=systemurl)
    form = form or {}
    uid_ = variables["clientsdetails"]["id"]
    chosen = str(variables.get("deptid", ""))
    shown = [{"id": d.get("id"), "name": d.get("name", ""),
              "description": d.get("description", ""), "selected": str(d.get("id")) == chosen,
              "url": f"submitticket.php?uid={uid_}&step=2&deptid={d.get('id')}"}
             for d in variables.get("departments") or [] if isinstance(d, Mapping)]
    return _render("submit_ticket.html", area="Client Area", title=variables["pagetitle"],
                   step=variables["step"], departments=shown,
                   notice=Markup(str(variables.get("vipgate_notice") or "")),  # noqa: S704
                   form_url=f"submitticket.php?uid={uid_}&step=2&deptid={chosen}",
                   subject=form.get("subject", ""), message=form.get("message", ""),
                   priority=form.get("urgency", "Medium"), errors=errors or [],
                   opened=opened)


def submit_ticket(sandbox: Sandbox, uid: Any, form: Mapping[str, str], *,
                  systemurl: str | None = None) -> str:
    """The form posted: open the ticket as the client area does (TicketOpenValidation may
    refuse it), then show the page again with the outcome."""
    client = _client(sandbox, uid)
    dept = _id(form.get("deptid"), "department id")
    if dept not in {d["id"] for d in departments(sandbox)}:
        raise PageNotFound(f"Department ID Not Found: {dept}")
    subject, message = form.get("subject", "").strip(), form.get("message", "").strip()
    errors = [text for text, missing in (("Subject is required", not subject),
                                         ("Message is required", not message)) if missing]
    opened = None
    if not errors:
        # The raw form field, whatever it holds (or left out): WHMCS's own handling.
        result = sandbox.submit_ticket_form(int(client["id"]), dept, subject, message,
                                            form.get("urgency"))
        errors, opened = list(result.errors), result.tid
    return render_submit_ticket(sandbox, client["id"], 2, dept, systemurl=systemurl,
                                form={} if opened else form, errors=errors, opened=opened)


# --- HTTP ---------------------------------------------------------------------------------


def _not_found(problem: str) -> Response:
    area = "Admin Area" if request.path.startswith("/admin/") else "Client Area"
    return Response(_render("not_found.html", area=area, title="Not Found", problem=problem),
                    status=404, mimetype="text/html")


def _page(render: Any, *args: Any, **kwargs: Any) -> Response:
    try:
        return Response(render(*args, **kwargs), mimetype="text/html")
    except PageNotFound as exc:
        return _not_found(str(exc))


def register_pages(app: Flask, sandbox: Sandbox) -> None:
    """Serve the pages on the sandbox's Flask app."""

    @app.get("/admin/clientssummary.php")
    def client_summary_page() -> Response:
        return _page(render_client_summary, sandbox, request.args.get("userid"))

    @app.get("/admin/supporttickets.php")
    def ticket_page() -> Response:
        if request.args.get("action") != "view":
            return _not_found("Unknown action: only action=view is emulated")
        return _page(render_ticket_view, sandbox, request.args.get("id"))

    @app.route("/clientarea.php", methods=["GET", "POST"])
    def client_home_page() -> Response:
        # The client "logged in" by the last uid asked for (a cookie stands in for WHMCS's
        # session): a form posted to clientarea.php, as the banner's, names no uid.
        uid = request.args.get("uid") or request.cookies.get(SESSION_COOKIE)
        if request.method == "POST":
            response = _page(render_client_home, sandbox, uid, request.form.to_dict())
        else:
            response = _page(render_client_home, sandbox, uid)
        if response.status_code == 200 and uid:
            response.set_cookie(SESSION_COOKIE, str(uid), httponly=True, samesite="Lax")
        return response

    @app.route("/submitticket.php", methods=["GET", "POST"])
    def submit_ticket_page() -> Response:
        uid = request.args.get("uid")
        if request.method == "POST":
            return _page(submit_ticket, sandbox, uid, request.form,
                         systemurl=request.url_root)
        return _page(render_submit_ticket, sandbox, uid, request.args.get("step", "1"),
                     request.args.get("deptid"), systemurl=request.url_root)

