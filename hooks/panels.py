"""WHMCS page hooks: what vipgate shows inside WHMCS's admin and client areas.

Each is answered at once from vipgate's own records (``bridge.panels``); the handlers only say
which panel, for which client, in which language."""

from hooks.registry import PanelQuestion, on


@on("AdminAreaClientSummaryPage")
def client_summary(userid: int) -> PanelQuestion:
    return PanelQuestion("client_summary", userid)


@on("AdminAreaViewTicketPage")
def ticket_view(ticketid: int, userid: int | None) -> PanelQuestion:
    return PanelQuestion("ticket_badge", userid or 0, ticket_id=ticketid)


@on("ClientAreaPageSubmitTicket")
def submit_ticket(userid: int | None, language: str | None) -> PanelQuestion:
    return PanelQuestion("submit_ticket", userid or 0, language=language or None)


@on("ClientAreaHomepage")
def client_home(userid: int | None, language: str | None, vipgate_action: str | None,
                vipgate_token: str | None) -> PanelQuestion:
    return PanelQuestion("home_banner", userid or 0, language=language or None,
                         action=vipgate_action or None, token=vipgate_token or None)
