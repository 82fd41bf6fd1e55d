"""Support tickets: the client area's Open Ticket form (TicketOpenValidation with the raw
``urgency``, then TicketOpen), OpenTicket (staff: TicketOpenAdmin), e-mail piping (TicketOpen
without TicketOpenValidation), replies, staff notes and UpdateTicket."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bridge.model import TICKET_PRIORITIES
from bridge.sandbox.core import WhmcsError, inserted_id
from bridge.sandbox.services import ServicesMixin
from bridge.whmcs.schema import (
    tblclients,
    tblticketdepartments,
    tblticketnotes,
    tblticketreplies,
    tbltickets,
    tblticketstatuses,
)

INVALID_PRIORITY = "Invalid Ticket Priority. Valid priorities are: Low,Medium,High"
SANDBOX_ADMIN = "Sandbox Admin"


@dataclass(frozen=True)
class TicketOpenResult:
    """What submitting the Open Ticket form produced: a ticket, or the validation errors
    TicketOpenValidation returned (shown to the client; no ticket is created)."""

    ticket_id: int | None
    tid: str | None
    c: str | None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.ticket_id is not None

    @property
    def error(self) -> str | None:
        return self.errors[0] if self.errors else None


def _validation_errors(returns: list[Any]) -> list[str]:
    errors: list[str] = []
    for value in returns:
        values = value if isinstance(value, list) else [value]
        errors.extend(str(v) for v in values if isinstance(v, str) and v.strip())
    return errors


class TicketsMixin(ServicesMixin):
    # --- departments -------------------------------------------------------------------

    def add_department(self, name: str, *, email: str = "", hidden: bool = False,
                       clientsonly: bool = False) -> int:
        with self.transaction() as conn:
            order = conn.execute(sa.select(sa.func.count()).select_from(tblticketdepartments)
                                 ).scalar() or 0
            return inserted_id(conn.execute(tblticketdepartments.insert().values(
                name=name, description=name, email=email or f"{name.lower()}@sandbox.test",
                clientsonly="on" if clientsonly else "", hidden="on" if hidden else "",
                order=order + 1)))

    # --- reading -----------------------------------------------------------------------

    def ticket(self, ticket_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return self.get_row(conn, tbltickets, ticket_id)

    def find_ticket(self, conn: Connection, ticketid: Any = None,
                    ticketnum: Any = None) -> dict[str, Any] | None:
        if ticketid not in (None, ""):
            return self.get_row(conn, tbltickets, ticketid)
        if ticketnum not in (None, ""):
            row = conn.execute(sa.select(tbltickets).where(tbltickets.c.tid == str(ticketnum))
                               ).mappings().first()
            return dict(row) if row is not None else None
        return None

    def ticket_statuses(self, conn: Connection) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(sa.select(tblticketstatuses).order_by(
            tblticketstatuses.c.sortorder)).mappings()]

    # --- opening -----------------------------------------------------------------------

    def open_ticket(self, client: int, dept: int, subject: str, priority: str = "Medium",
                    message: str = "Hello, I need help.", *, admin: bool = False,
                    service_id: int | None = None) -> TicketOpenResult:
        """OpenTicket through the API (``admin=True``: with ``admin``, as staff do from the
        admin area): the priority must be Low, Medium or High; TicketOpenValidation runs
        (``isAdmin`` as given) and a non-empty returned string blocks the submission;
        otherwise the ticket is stored and TicketOpen (TicketOpenAdmin for staff) fires."""
        if priority not in TICKET_PRIORITIES:
            raise WhmcsError(INVALID_PRIORITY)
        return self._open(client, dept, subject, message, priority, priority, admin=admin,
                          service_id=service_id)

    def submit_ticket_form(self, client: int, dept: int, subject: str,
                           message: str = "Hello, I need help.", urgency: str | None = None,
                           *, service_id: int | None = None,
                           language: str | None = None) -> TicketOpenResult:
        """The client area's Open Ticket form posted. WHMCS hands TicketOpenValidation the
        raw form field ``urgency`` as ``priority`` (any string, empty, or the key left out
        when the theme has no such field, ``urgency=None``) and only afterwards stores
        Medium when it is not Low, Medium or High. The hook runs in the client's session
        (``uid``, ``Language``: ``language``, the one the client picked in the client area,
        else the client's WHMCS language, else the system default)."""
        stored = urgency if urgency in TICKET_PRIORITIES else "Medium"
        with self.engine.connect() as conn:
            row = self._require(conn, tblclients, client, "Client ID Not Found")
            chosen = language or row["language"] or self.setting("Language", conn) or "english"
        return self._open(client, dept, subject, message, urgency, stored,
                          service_id=service_id,
                          session={"uid": int(client), "Language": str(chosen)})

    def pipe_ticket(self, email: str, dept: int, subject: str,
                    message: str = "Hello, I need help.", *, name: str = "") -> TicketOpenResult:
        """An e-mail piped into department ``dept``: from a client's address it becomes that
        client's ticket, from any other a guest's. Piping never runs TicketOpenValidation:
        the ticket is stored (priority Medium) and TicketOpen fires."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tblclients.c.id).where(
                tblclients.c.email == email)).first()
        return self._open(int(row.id) if row else 0, dept, subject, message, None, "Medium",
                          validate=False, guest=(name or email, email))

    def _open(self, client: int, dept: int, subject: str, message: str,
              raw_priority: str | None, priority: str, *, admin: bool = False,
              service_id: int | None = None, validate: bool = True,
              guest: tuple[str, str] = ("", ""),
              session: dict[str, Any] | None = None) -> TicketOpenResult:
        with self.engine.connect() as conn:
            client_row = self._require(conn, tblclients, client, "Client ID Not Found") \
                if client or validate else None
            dept_row = self._require(conn, tblticketdepartments, dept,
                                     "Department ID not found")
        if not subject:
            raise WhmcsError("Subject is required")
        if not message:
            raise WhmcsError("Message is required")
        if validate:
            fields: dict[str, Any] = {
                "clientId": int(client), "contactId": 0, "name": "", "email": "",
                "isAdmin": admin, "departmentId": int(dept), "subject": subject,
                "message": message, "priority": raw_priority,
                "relatedService": f"S{service_id}" if service_id else "", "customfields": []}
            if raw_priority is None:
                del fields["priority"]
            if session is not None:  # the client area's PHP session (fire.php's $_SESSION)
                fields["__session__"] = session
            errors = _validation_errors(self.run_hook("TicketOpenValidation", fields))
            if errors:
                return TicketOpenResult(None, None, None, errors)
        userid = int(client_row["id"]) if client_row else 0
        with self.transaction() as conn:
            tid = self._new_mask(conn)
            access = "".join(self.random.choices(string.ascii_letters + string.digits, k=8))
            ticket_id = inserted_id(conn.execute(tbltickets.insert().values(
                tid=tid, did=int(dept), userid=userid, c=access, ipaddress="127.0.0.1",
                name="" if userid else guest[0], email="" if userid else guest[1],
                date=self.now, title=subject, message=message, status="Open",
                urgency=priority, admin=SANDBOX_ADMIN if admin else "", lastreply=self.now,
                service=f"S{service_id}" if service_id else "", updated_at=self.now,
            )))
        self.run_hook("TicketOpenAdmin" if admin else "TicketOpen", {
            "ticketid": ticket_id, "ticketmask": tid, "userid": userid,
            "deptid": int(dept), "deptname": dept_row["name"], "subject": subject,
            "message": message, "priority": priority})
        return TicketOpenResult(ticket_id, tid, access)

    def _new_mask(self, conn: Connection) -> str:
        """A new public ticket number from the TicketMask setting (%A letter, %a lower-case
        letter, %n digit, %y/%m/%d date parts)."""
        mask = self.setting("TicketMask", conn) or "%n%n%n%n%n%n"
        parts = {"A": lambda: self.random.choice(string.ascii_uppercase),
                 "a": lambda: self.random.choice(string.ascii_lowercase),
                 "n": lambda: self.random.choice(string.digits),
                 "y": lambda: f"{self.today.year}", "m": lambda: f"{self.today.month:02d}",
                 "d": lambda: f"{self.today.day:02d}"}
        for _ in range(100):
            out, i = [], 0
            while i < len(mask):
                if mask[i] == "%" and i + 1 < len(mask) and mask[i + 1] in parts:
                    out.append(parts[mask[i + 1]]())
                    i += 2
                else:
                    out.append(mask[i])
                    i += 1
            candidate = "".join(out)
            if conn.execute(sa.select(tbltickets.c.id).where(tbltickets.c.tid == candidate)
                            ).first() is None:
                return candidate
        raise WhmcsError("Unable to generate ticket number")

    # --- replies and notes -------------------------------------------------------------

    def client_reply(self, ticket_id: int, message: str = "Any news?", *,
                     status: str | None = None, name: str = "", email: str = "") -> int:
        """The client replies from the client area (``name``/``email``: a non-client
        replies); fires TicketUserReply."""
        return self._reply(ticket_id, message, admin="", status=status, name=name,
                           email=email)

    def admin_reply(self, ticket_id: int, message: str, *, admin: str = SANDBOX_ADMIN,
                    status: str = "Answered") -> int:
        """Staff reply; fires TicketAdminReply."""
        return self._reply(ticket_id, message, admin=admin, status=status)

    def _reply(self, ticket_id: int, message: str, *, admin: str, status: str | None = None,
               name: str = "", email: str = "") -> int:
        if not message:
            raise WhmcsError("Message is required")
        new_status = status or ("Answered" if admin else "Customer-Reply")
        with self.transaction() as conn:
            ticket = self._require(conn, tbltickets, ticket_id, "Ticket ID not found")
            if new_status not in [row["title"] for row in self.ticket_statuses(conn)]:
                raise WhmcsError("Invalid Ticket Status. Valid statuses are: " + ",".join(
                    row["title"] for row in self.ticket_statuses(conn)))
            by_client = not admin and not name
            reply_id = inserted_id(conn.execute(tblticketreplies.insert().values(
                tid=ticket["id"], userid=ticket["userid"] if by_client else 0, name=name,
                email=email, date=self.now, message=message, admin=admin,
            )))
            conn.execute(tbltickets.update().where(tbltickets.c.id == ticket["id"]).values(
                status=new_status, lastreply=self.now, updated_at=self.now))
            dept = self.get_row(conn, tblticketdepartments, ticket["did"]) or {"name": ""}
        common = {"ticketid": int(ticket["id"]), "replyid": reply_id,
                  "deptid": int(ticket["did"]), "deptname": dept["name"],
                  "subject": ticket["title"], "message": message,
                  "priority": ticket["urgency"], "status": new_status}
        if admin:
            self.run_hook("TicketAdminReply", {**common, "admin": admin})
        else:
            self.run_hook("TicketUserReply", {**common, "userid": int(ticket["userid"])})
        return reply_id

    def add_ticket_note(self, ticket_id: int, message: str, *,
                        admin: str = SANDBOX_ADMIN) -> int:
        """AddTicketNote; fires TicketAddNote."""
        if not message:
            raise WhmcsError("Message is required")
        with self.transaction() as conn:
            ticket = self._require(conn, tbltickets, ticket_id, "Ticket ID not found")
            note_id = inserted_id(conn.execute(tblticketnotes.insert().values(
                ticketid=ticket["id"], admin=admin, date=self.now, message=message,
            )))
        self.run_hook("TicketAddNote", {"ticketid": int(ticket["id"]), "message": message,
                                        "adminid": 1, "attachments": ""})
        return note_id

    # --- UpdateTicket ------------------------------------------------------------------

    def update_ticket(self, ticket_id: int, *, priority: str | None = None,
                      status: str | None = None, deptid: int | None = None,
                      subject: str | None = None, flag: int | None = None) -> None:
        """UpdateTicket. With ``update_ticket_fires_hooks`` (default on) a changed priority
        fires TicketPriorityChange, a changed status TicketStatusChange (and TicketClose when
        closed), a changed department TicketDepartmentChange."""
        pending: list[tuple[str, dict[str, Any]]] = []
        with self.transaction() as conn:
            ticket = self._require(conn, tbltickets, ticket_id, "Ticket ID Not Found")
            values: dict[str, Any] = {}
            if deptid is not None:
                dept = self._require(conn, tblticketdepartments, deptid,
                                     "Department ID Not Found")
                if int(dept["id"]) != int(ticket["did"]):
                    values["did"] = int(dept["id"])
                    pending.append(("TicketDepartmentChange", {
                        "ticketid": int(ticket["id"]), "deptid": int(dept["id"]),
                        "deptname": dept["name"]}))
            if status not in (None, ""):
                titles = [row["title"] for row in self.ticket_statuses(conn)]
                if status not in titles:
                    raise WhmcsError("Invalid Ticket Status. Valid statuses are: "
                                     + ",".join(titles))
                if status != ticket["status"]:
                    values["status"] = status
                    pending.append(("TicketStatusChange", {
                        "adminid": 1, "status": status, "ticketid": int(ticket["id"])}))
                    if status == "Closed":
                        pending.append(("TicketClose", {"ticketid": int(ticket["id"])}))
            if priority not in (None, ""):
                if priority not in TICKET_PRIORITIES:
                    raise WhmcsError(INVALID_PRIORITY)
                if priority != ticket["urgency"]:
                    values["urgency"] = priority
                    pending.append(("TicketPriorityChange", {
                        "ticketid": int(ticket["id"]), "priority": priority}))
            if subject:
                values["title"] = subject
            if flag is not None:
                values["flag"] = int(flag)
            if values:
                values["updated_at"] = self.now
                conn.execute(tbltickets.update().where(tbltickets.c.id == ticket["id"])
                             .values(values))
        if self.update_ticket_fires_hooks:
            self.run_hooks(pending)
