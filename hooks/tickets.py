"""Ticket events: new tickets and replies get the priority their client's standing calls for;
a priority change may be staff overriding vipgate, which the engine then leaves alone."""

from hooks.registry import Subjects, TicketGateQuestion, on


@on("TicketOpen", "TicketUserReply")
def ticket_activity(ticketid: int, userid: int | None) -> Subjects:
    clients = frozenset({userid}) if userid else frozenset()
    return Subjects(clients=clients, tickets=frozenset({ticketid}))


@on("TicketPriorityChange")
def ticket_priority_changed(ticketid: int) -> Subjects:
    return Subjects(tickets=frozenset({ticketid}))


@on("TicketOpenValidation")
def ticket_about_to_open(clientId: int | None, departmentId: int,
                         isAdmin: bool | None) -> TicketGateQuestion:
    return TicketGateQuestion(client_id=clientId or 0, department_id=departmentId,
                              by_admin=bool(isAdmin))
