"""Ticket events: new tickets and replies get the priority their client's standing calls for;
a priority change may be staff overriding vipgate, which the engine then leaves alone; a
client's new ticket that got round the gate is handled as the gate would have."""

from hooks.registry import Subjects, TicketGateQuestion, on


@on("TicketOpenAdmin", "TicketUserReply")
def ticket_activity(ticketid: int, userid: int | None) -> Subjects:
    clients = frozenset({userid}) if userid else frozenset()
    return Subjects(clients=clients, tickets=frozenset({ticketid}))


@on("TicketOpen")
def ticket_opened(ticketid: int, userid: int | None, deptid: int | None) -> Subjects:
    """Opened by the client (the client area, after the gate) or e-mailed in (never met the
    gate): the engine acts as the gate would have when it finds the second kind. Tickets
    staff open (TicketOpenAdmin) are staff's choice and get only the priority matrix."""
    clients = frozenset({userid}) if userid else frozenset()
    return Subjects(clients=clients, tickets=frozenset({ticketid}),
                    opened=frozenset({(ticketid, deptid or 0)}) if userid else frozenset())


@on("TicketPriorityChange")
def ticket_priority_changed(ticketid: int) -> Subjects:
    return Subjects(tickets=frozenset({ticketid}))


@on("TicketOpenValidation")
def ticket_about_to_open(clientId: int | None, departmentId: int, isAdmin: bool | None,
                         language: str | None) -> TicketGateQuestion:
    """``language``: not WHMCS's; the stub adds the client area's (the session's, else the
    client's, else WHMCS's default), in which a refusal is written."""
    return TicketGateQuestion(client_id=clientId or 0, department_id=departmentId,
                              by_admin=bool(isAdmin), language=language or None)
