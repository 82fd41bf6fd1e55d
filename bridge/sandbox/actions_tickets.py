"""API actions about support tickets: GetTickets, GetTicket, OpenTicket, UpdateTicket,
AddTicketReply, AddTicketNote, GetSupportDepartments, GetSupportStatuses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bridge.sandbox.actions_common import Params, action, dt0, nest, page, s
from bridge.sandbox.core import WhmcsError
from bridge.whmcs.schema import (
    tblclients,
    tblticketdepartments,
    tblticketnotes,
    tblticketreplies,
    tbltickets,
)

if TYPE_CHECKING:
    from bridge.sandbox.whmcs import Sandbox


def _status_titles(sb: Sandbox, conn: Connection, flag: str) -> list[str]:
    return [row["title"] for row in sb.ticket_statuses(conn) if row[flag]]


def _owner(conn: Connection, ticket: dict[str, Any]) -> tuple[str, str]:
    """(name, email) of whoever opened the ticket: the client's, for a client's ticket."""
    client = conn.execute(sa.select(tblclients.c.firstname, tblclients.c.lastname,
                                    tblclients.c.email).where(
        tblclients.c.id == ticket["userid"])).first() if ticket["userid"] else None
    if client is None:
        return ticket["name"], ticket["email"]
    return f"{client.firstname} {client.lastname}".strip(), client.email


def _ticket_summary(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    name, email = _owner(conn, row)
    return {
        "id": s(row["id"]), "tid": s(row["tid"]), "deptid": s(row["did"]),
        "userid": s(row["userid"]), "name": name, "owner_name": name, "email": email,
        "requestor_name": name, "requestor_email": email,
        "requestor_type": "Owner" if row["userid"] else "Guest", "cc": row["cc"],
        "c": row["c"], "date": dt0(row["date"]), "subject": row["title"],
        "status": row["status"], "priority": row["urgency"], "admin": row["admin"],
        "attachment": row["attachment"], "attachments": [],
        "attachments_removed": s(row["attachments_removed"]), "lastreply": s(row["lastreply"]),
        "flag": s(row["flag"]), "service": row["service"]}


@action("GetTickets")
def get_tickets(sb: Sandbox, p: Params) -> dict[str, Any]:
    t = tbltickets.c
    query = sa.select(tbltickets).where(t.merged_ticket_id == 0)
    if p.has("clientid"):
        query = query.where(t.userid == p.int("clientid", -1))
    if p.has("deptid"):
        query = query.where(t.did == p.int("deptid", -1))
    if p.has("email"):
        query = query.where(t.email == p.get("email"))
    if p.has("subject"):
        query = query.where(t.title.contains(p.get("subject"), autoescape=True))
    status = p.get("status")
    with sb.engine.connect() as conn:
        if status == "All Active Tickets":
            query = query.where(t.status.in_(_status_titles(sb, conn, "showactive")))
        elif status == "Awaiting Reply":
            query = query.where(t.status.in_(_status_titles(sb, conn, "showawaiting")))
        elif status == "My Flagged Tickets":
            query = query.where(t.flag != 0, t.status.in_(_status_titles(sb, conn,
                                                                          "showactive")))
        elif status:
            query = query.where(t.status == status)
        total, start, rows = page(conn, query, p, [t.lastreply.desc(), t.id.desc()])
        tickets = [_ticket_summary(conn, row) for row in rows]
    return {"totalresults": s(total), "startnumber": start, "numreturned": len(tickets),
            "tickets": nest("ticket", tickets)}


@action("GetTicket")
def get_ticket(sb: Sandbox, p: Params) -> dict[str, Any]:
    with sb.engine.connect() as conn:
        ticket = sb.find_ticket(conn, p.optional("ticketid"), p.optional("ticketnum"))
        if ticket is None:
            raise WhmcsError("Ticket ID Not Found")
        name, email = _owner(conn, ticket)
        dept = sb.get_row(conn, tblticketdepartments, ticket["did"]) or {"name": ""}
        replies = [{"replyid": "0", "userid": s(ticket["userid"]),
                    "contactid": s(ticket["contactid"]), "name": name, "email": email,
                    "date": dt0(ticket["date"]), "message": ticket["message"],
                    "attachment": ticket["attachment"], "admin": ticket["admin"]}]
        for r in conn.execute(sa.select(tblticketreplies).where(
                tblticketreplies.c.tid == ticket["id"]).order_by(
                tblticketreplies.c.date, tblticketreplies.c.id)).mappings():
            by_client = bool(r["userid"]) and not r["admin"]
            replies.append({
                "replyid": s(r["id"]), "userid": s(r["userid"]), "contactid": s(r["contactid"]),
                "name": name if by_client else r["name"], "email": email if by_client
                else r["email"], "date": s(r["date"]), "message": r["message"],
                "attachment": r["attachment"], "admin": r["admin"], "rating": s(r["rating"])})
        notes = [{"noteid": s(n["id"]), "date": dt0(n["date"]), "message": n["message"],
                  "admin": n["admin"]} for n in conn.execute(sa.select(tblticketnotes).where(
                      tblticketnotes.c.ticketid == ticket["id"]).order_by(
                      tblticketnotes.c.id)).mappings()]
    if p.get("repliessort").upper() == "DESC":
        replies.reverse()
    return {
        "ticketid": s(ticket["id"]), "tid": s(ticket["tid"]), "c": ticket["c"],
        "deptid": s(ticket["did"]), "deptname": dept["name"], "userid": s(ticket["userid"]),
        "contactid": s(ticket["contactid"]), "name": name, "email": email,
        "requestor_name": name, "requestor_email": email,
        "requestor_type": "Owner" if ticket["userid"] else "Guest", "cc": ticket["cc"],
        "date": dt0(ticket["date"]), "subject": ticket["title"], "status": ticket["status"],
        "priority": ticket["urgency"], "admin": ticket["admin"],
        "lastreply": s(ticket["lastreply"]), "flag": s(ticket["flag"]),
        "service": ticket["service"], "replies": nest("reply", replies),
        # No notes: ``"notes": []`` here, not "" (whmcs-reference §6).
        "notes": {"note": notes} if notes else []}


@action("OpenTicket")
def open_ticket(sb: Sandbox, p: Params) -> dict[str, Any]:
    if not p.has("clientid"):
        if not (p.has("name") and p.has("email")):
            raise WhmcsError("Name and email address are required if not a client")
        raise WhmcsError("The sandbox only opens tickets for clients (pass clientid)")
    result = sb.open_ticket(p.int("clientid", -1), p.int("deptid", -1), p.get("subject"),
                            p.get("priority") or "Medium", p.get("message"),
                            admin=p.flag("admin"), service_id=p.int("serviceid") or None)
    if not result.ok:
        raise WhmcsError(result.errors[0])
    return {"id": s(result.ticket_id), "tid": result.tid, "c": result.c}


@action("UpdateTicket")
def update_ticket(sb: Sandbox, p: Params) -> dict[str, Any]:
    flag = 0 if p.flag("removeFlag") else (p.int("flag") if p.has("flag") else None)
    sb.update_ticket(p.int("ticketid"), priority=p.optional("priority"),
                     status=p.optional("status"),
                     deptid=p.int("deptid", -1) if p.has("deptid") else None,
                     subject=p.optional("subject"), flag=flag)
    return {"ticketid": p.get("ticketid")}


def _ticket_id(sb: Sandbox, p: Params) -> int:
    with sb.engine.connect() as conn:
        ticket = sb.find_ticket(conn, p.optional("ticketid"), p.optional("ticketnum"))
    if ticket is None:
        raise WhmcsError("Ticket ID not found")
    return int(ticket["id"])


@action("AddTicketReply")
def add_ticket_reply(sb: Sandbox, p: Params) -> dict[str, Any]:
    ticket_id = _ticket_id(sb, p)
    status = p.optional("status")
    if p.has("clientid"):
        if sb.client(p.int("clientid", -1)) is None:
            raise WhmcsError("Client ID Not Found")
        sb.client_reply(ticket_id, p.get("message"), status=status)
    elif p.has("adminusername"):
        sb.admin_reply(ticket_id, p.get("message"), admin=p.get("adminusername"),
                       status=status or "Answered")
    elif p.has("name") and p.has("email"):
        sb.client_reply(ticket_id, p.get("message"), status=status, name=p.get("name"),
                        email=p.get("email"))
    else:
        raise WhmcsError("Name and email address are required if not a client")
    return {}


@action("AddTicketNote")
def add_ticket_note(sb: Sandbox, p: Params) -> dict[str, Any]:
    sb.add_ticket_note(_ticket_id(sb, p), p.get("message"))
    return {}


@action("GetSupportDepartments")
def get_support_departments(sb: Sandbox, p: Params) -> dict[str, Any]:
    with sb.engine.connect() as conn:
        awaiting = _status_titles(sb, conn, "showawaiting")
        active = _status_titles(sb, conn, "showactive")
        departments = []
        for dept in conn.execute(sa.select(tblticketdepartments).order_by(
                tblticketdepartments.c.order, tblticketdepartments.c.id)).mappings():
            statuses = conn.execute(sa.select(tbltickets.c.status).where(
                tbltickets.c.did == dept["id"])).scalars().all()
            departments.append({
                "id": s(dept["id"]), "name": dept["name"],
                "awaitingreply": s(sum(1 for x in statuses if x in awaiting)),
                "opentickets": s(sum(1 for x in statuses if x in active))})
    return {"totalresults": len(departments), "departments": nest("department", departments)}


@action("GetSupportStatuses")
def get_support_statuses(sb: Sandbox, p: Params) -> dict[str, Any]:
    with sb.engine.connect() as conn:
        counts: dict[str, int] = dict(conn.execute(
            sa.select(tbltickets.c.status, sa.func.count()).group_by(tbltickets.c.status)).all())
        statuses = [{"title": r["title"], "count": s(counts.get(r["title"], 0)),
                     "color": r["color"]} for r in sb.ticket_statuses(conn)]
    return {"totalresults": s(len(statuses)), "statuses": nest("status", statuses)}
