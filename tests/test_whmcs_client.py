"""The WHMCS API client against a real local HTTP server answering WHMCS-shaped JSON.

The server stands in for WHMCS at the edge only, for what the sandbox cannot easily produce:
5xx, timeouts, HTML error pages, redirects, refused connections, odd pagination. Its answers
are the documented examples of whmcs-reference §2 (DD:api-reference/*.md), quirks included:
numbers as strings, ``""`` for empty lists, ``result=error`` with HTTP 200.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bridge.policy import state
from bridge.settings import WhmcsSettings
from bridge.whmcs import (
    WhmcsApiError,
    WhmcsAuthError,
    WhmcsClient,
    WhmcsConfigError,
    WhmcsError,
    WhmcsNotFound,
    WhmcsResponseError,
    WhmcsUnavailable,
)
from bridge.whmcs import parse as p
from bridge.whmcs.transport import Transport, decode

IDENTIFIER = "vgIdentifier7Qx2KpL9"
SECRET = "vgSecretN0tF0rL0gs4x8Zq"
ACCESSKEY = "vg!Access(Key)-77"


# --- the stand-in WHMCS ----------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def ok(**data: Any) -> Reply:
    return Reply(body=json.dumps({"result": "success", **data}).encode())


def error(message: str, status: int = 200) -> Reply:
    return Reply(status=status, body=json.dumps({"result": "error", "message": message}).encode())


def html(status: int, text: str = "<html><body>Fatal error</body></html>") -> Reply:
    return Reply(status=status, body=text.encode(), content_type="text/html; charset=UTF-8")


@dataclass
class Seen:
    method: str
    path: str
    query: bytes
    content_type: str
    form: dict[str, str]


class FakeWhmcs:
    """Scripted replies first (``queue``), then ``handler(form)``; every request recorded."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.queue: list[Reply] = []
        self.handler: Callable[[dict[str, str]], Reply] = lambda form: ok()
        self.url = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        form = request.form.to_dict()
        self.seen.append(Seen(request.method, request.path, request.query_string,
                              request.mimetype, form))
        reply = self.queue.pop(0) if self.queue else self.handler(form)
        if reply.delay:
            time.sleep(reply.delay)
        response = Response(reply.body, status=reply.status, content_type=reply.content_type,
                            headers=reply.headers)
        return response(environ, start_response)

    def actions(self) -> list[str]:
        return [s.form.get("action", "") for s in self.seen]


@pytest.fixture
def whmcs() -> Iterator[FakeWhmcs]:
    fake = FakeWhmcs()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def whmcs_settings(url: str, *, accesskey: str = ACCESSKEY,
                   timeout: float = 5.0) -> WhmcsSettings:
    # Built directly: the validated settings refuse timeouts under 1 s, tests need shorter.
    return WhmcsSettings(url=url, identifier=IDENTIFIER, secret=SECRET, accesskey=accesskey,
                         timeout_seconds=timeout, database_url="")


@dataclass
class Made:
    client: WhmcsClient
    sleeps: list[float]


@pytest.fixture
def make(whmcs: FakeWhmcs) -> Iterator[Callable[..., Made]]:
    clients: list[WhmcsClient] = []

    def build(*, url: str | None = None, timeout: float = 5.0, rng: float = 1.0,
              accesskey: str = ACCESSKEY, session: requests.Session | None = None) -> Made:
        sleeps: list[float] = []
        client = WhmcsClient(whmcs_settings(url or whmcs.url, accesskey=accesskey,
                                            timeout=timeout),
                             session=session, sleep=sleeps.append, rng=lambda: rng)
        clients.append(client)
        return Made(client, sleeps)

    yield build
    for client in clients:
        client.close()


# --- documented examples, as the JSON api.php really sends them (nested lists) -------------

GET_CLIENTS_ROW = {"id": "1", "firstname": "Price", "lastname": "Beier", "companyname": "",
                   "email": "cecelia99@example.com", "datecreated": "2016-01-01",
                   "groupid": "0", "status": "Active"}

GET_CLIENTS_DETAILS = {
    "client": {"userid": "1", "id": "1", "uuid": "f08ea4d1-c578-441a-9b0a-aa3aff8b1acf",
               "firstname": "Test", "lastname": "Client", "companyname": "",
               "email": "test-client@example.com", "password": "$2y$10$hash", "currency": "1",
               "groupid": "0", "status": "Active", "credit": "0.00", "language": "",
               "currency_code": "USD", "lastlogin": "Date: 03/10/2016 10:26<br>IP Address:"},
    "stats": {"numdueinvoices": "19", "dueinvoicesbalance": "$2645.80 USD"},
}

GET_CLIENT_GROUPS = {"totalresults": "2", "groups": {"group": [
    {"id": "1", "groupname": "Client Group 1", "groupcolour": "#28C99B",
     "discountpercent": "10.00", "susptermexempt": "on", "separateinvoices": "on"},
    {"id": "2", "groupname": "Client Group 2", "groupcolour": "#FFFFFF",
     "discountpercent": "0.00", "susptermexempt": "", "separateinvoices": ""}]}}

GET_INVOICES_ROW = {"id": "1", "userid": "1", "firstname": "Test", "lastname": "Client",
                    "companyname": "", "invoicenum": "", "date": "2016-01-01",
                    "duedate": "2016-01-08", "datepaid": "0000-00-00 00:00:00",
                    "subtotal": "15.95", "credit": "0.00", "tax": "0.00", "tax2": "0.00",
                    "total": "15.95", "taxrate": "0.00", "taxrate2": "0.00",
                    "status": "Unpaid", "paymentmethod": "authorize", "notes": "",
                    "currencycode": "USD", "currencyprefix": "$", "currencysuffix": "USD"}

GET_INVOICE = {"invoiceid": "1", "invoicenum": "", "userid": "2361", "date": "2016-01-01",
               "duedate": "2016-01-08", "datepaid": "0000-00-00 00:00:00",
               "subtotal": "15.95", "credit": "0.00", "tax": "0.00", "tax2": "0.00",
               "total": "15.95", "balance": "15.95", "taxrate": "0.00", "taxrate2": "0.00",
               "status": "Unpaid", "paymentmethod": "paypal", "notes": "", "ccgateway": "",
               "items": {"item": [{"id": "1", "type": "Hosting", "relid": "1",
                                   "description": "Sample Monthly Product", "amount": "15.95",
                                   "taxed": "0"}]},
               "transactions": ""}

GET_CLIENTS_PRODUCTS_ROW = {
    "id": "1", "qty": "1", "clientid": "1", "orderid": "1", "ordernumber": "456789",
    "pid": "1", "regdate": "2015-01-01", "name": "Starter", "domain": "demodomain.com",
    "serverid": "1", "suspensionreason": "", "firstpaymentamount": "12.95",
    "recurringamount": "12.95", "billingcycle": "Monthly", "nextduedate": "2016-11-25",
    "status": "Terminated", "username": "demodoma", "password": "xxxxxxxx",
    "overideautosuspend": "", "overidesuspenduntil": "0000-00-00",
    "lastupdate": "0000-00-00 00:00:00", "customfields": {"customfield": []},
    "configoptions": {"configoption": []}}

GET_TICKETS_ROW = {"id": "1", "tid": "516757", "deptid": "1", "userid": "1",
                   "name": "Cynthia Reilly", "email": "testuser@whmcs.com", "cc": "",
                   "c": "KPqH7yG3", "date": "2016-01-01 06:26:29",
                   "subject": "This is a sample ticket", "status": "Answered",
                   "priority": "Medium", "admin": "admin admin", "attachment": "",
                   "lastreply": "2016-01-01 06:30:16", "flag": "0", "service": ""}

GET_TICKET = {"ticketid": "1", "tid": "516757", "c": "KPqH7yG3", "deptid": "1",
              "deptname": "Sample Support Department", "userid": "1", "contactid": "0",
              "date": "2016-01-01 06:26:29", "subject": "This is a sample ticket",
              "status": "Closed", "priority": "Medium", "lastreply": "2016-01-01 06:30:16",
              "flag": "0", "service": "",
              "replies": {"reply": [{"replyid": "0", "message": "Hey"}]},
              "notes": {"note": [{"noteid": "1", "date": "2016-01-01 06:26:42",
                                  "message": "This is a ticket note",
                                  "admin": "Demo Admin"}]}}

GET_SUPPORT_DEPARTMENTS = {"totalresults": 1, "departments": {"department": [
    {"id": "1", "name": "Sample Support Department", "awaitingreply": "0",
     "opentickets": "0"}]}}


def page(container: str, item: str, found: list[dict[str, Any]], total: int | str,
         start: int | str = "0") -> Reply:
    return ok(totalresults=str(total), startnumber=start, numreturned=str(len(found)),
              **{container: {item: found} if found else ""})


# --- the request ----------------------------------------------------------------------------


def test_call_posts_form_with_credentials_to_includes_api_php(whmcs, make) -> None:
    whmcs.queue.append(ok(clientid="7"))
    make().client.update_client_group(7, 3)
    seen = whmcs.seen[0]
    assert (seen.method, seen.path, seen.query) == ("POST", "/includes/api.php", b"")
    assert seen.content_type == "application/x-www-form-urlencoded"
    assert seen.form == {"action": "UpdateClient", "identifier": IDENTIFIER, "secret": SECRET,
                         "accesskey": ACCESSKEY, "responsetype": "json", "clientid": "7",
                         "groupid": "3"}


def test_base_url_with_a_path_and_trailing_slash_keeps_the_path(whmcs, make) -> None:
    make(url=whmcs.url + "/billing/").client.call("GetClientGroups")
    assert whmcs.seen[0].path == "/billing/includes/api.php"


def test_empty_accesskey_is_not_sent(whmcs, make) -> None:
    make(accesskey="").client.call("GetClientGroups")
    assert "accesskey" not in whmcs.seen[0].form


@pytest.mark.parametrize("url", ["", "ftp://whmcs.example", "https://", "whmcs.example",
                                 "https://user:pw@whmcs.example",
                                 "https://whmcs.example/?next=1", "https://whmcs.example/#x",
                                 "https://whmcs.example/includes/api.php"])
def test_unusable_base_url_is_refused_before_any_request(url) -> None:
    with pytest.raises(WhmcsConfigError):
        WhmcsClient(whmcs_settings(url))


@pytest.mark.parametrize(("params", "message"), [
    ({"secret": "x"}, "reserved"), ({"action": "DeleteClient"}, "reserved")])
def test_parameters_cannot_override_credentials_or_action(make, params, message) -> None:
    with pytest.raises(ValueError, match=message):
        make().client.call("GetClients", params)


class RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        return super().request(method, url, *args, **kwargs)


def test_every_call_has_timeouts_tls_verification_and_no_redirects(whmcs, make) -> None:
    session = RecordingSession()
    client = make(session=session, timeout=12).client
    whmcs.handler = lambda form: page("clients", "client", [GET_CLIENTS_ROW], 1)
    client.call("GetClientGroups")
    list(client.iter_clients())
    client.add_ticket_note(5, "note")
    assert len(session.calls) == 3
    for call in session.calls:
        assert call["url"] == whmcs.url + "/includes/api.php"
        assert call["timeout"] == (5.0, 12.0)
        assert call["verify"] is True
        assert call["allow_redirects"] is False
    session.close()


def test_the_environment_is_read_once_when_the_session_is_made(whmcs, monkeypatch) -> None:
    """Proxies, CA bundle and .netrc come from the environment as requests would take them,
    but once: requests' per-call scan of the environment cost about 1 ms a call (issue 17)."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/vipgate-ca.pem")
    remote = Transport(whmcs_settings("https://whmcs.example.com"))
    assert remote._session.proxies["https"] == "http://proxy.example:3128"
    assert remote._verify == "/etc/ssl/vipgate-ca.pem"
    local = Transport(whmcs_settings(whmcs.url))  # NO_PROXY: straight to WHMCS
    assert local._session.proxies == {}
    whmcs.handler = lambda form: ok(groups="")

    def scanned(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the environment was read again for a call")

    monkeypatch.setattr(requests.utils, "get_environ_proxies", scanned)
    monkeypatch.setattr(requests.utils, "get_netrc_auth", scanned)
    for _ in range(3):
        assert local.call("GetClientGroups")["result"] == "success"
    local.close()
    remote.close()


# --- retries and transport failures ---------------------------------------------------------


def test_untrusted_certificate_is_refused_and_not_retried() -> None:
    fake = FakeWhmcs()
    server = make_server("127.0.0.1", 0, fake, threaded=True, ssl_context="adhoc")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    sleeps: list[float] = []
    client = WhmcsClient(whmcs_settings(f"https://127.0.0.1:{server.server_port}"),
                         sleep=sleeps.append)
    try:
        with pytest.raises(WhmcsUnavailable, match="TLS") as caught:
            client.call("GetClients")
    finally:
        client.close()
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
    assert caught.value.attempts == 1 and caught.value.maybe_applied is False
    assert fake.seen == [] and sleeps == []



def test_500_then_success_is_retried(whmcs, make) -> None:
    whmcs.queue += [html(500), ok(**GET_CLIENT_GROUPS)]
    made = make(rng=0.5)
    groups = made.client.get_client_groups()
    assert [g.id for g in groups] == [1, 2]
    assert whmcs.actions() == ["GetClientGroups", "GetClientGroups"]
    assert made.sleeps == [0.5]  # full jitter: rng() * min(cap, 0.5 * 2**1)


@pytest.mark.parametrize(("rng", "sleeps"), [(1.0, [1.0, 2.0]), (0.25, [0.25, 0.5]),
                                             (0.0, [0.0, 0.0])])
def test_repeated_5xx_gives_unavailable_after_three_attempts(whmcs, make, rng, sleeps) -> None:
    whmcs.handler = lambda form: html(503)
    made = make(rng=rng)
    with pytest.raises(WhmcsUnavailable) as caught:
        made.client.get_client(1)
    assert caught.value.attempts == 3
    assert caught.value.maybe_applied is False
    assert "HTTP 503" in str(caught.value)
    assert len(whmcs.seen) == 3
    assert made.sleeps == sleeps


def test_backoff_is_capped(whmcs) -> None:
    whmcs.handler = lambda form: html(502)
    sleeps: list[float] = []
    client = WhmcsClient(whmcs_settings(whmcs.url), sleep=sleeps.append, rng=lambda: 1.0,
                         attempts=6)
    with pytest.raises(WhmcsUnavailable):
        client.call("GetClientGroups")
    client.close()
    assert sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_read_timeout_is_retried_then_unavailable(whmcs, make) -> None:
    whmcs.handler = lambda form: Reply(body=b'{"result":"success"}', delay=0.6)
    made = make(timeout=0.15)
    started = time.monotonic()
    with pytest.raises(WhmcsUnavailable) as caught:
        made.client.call("GetClientGroups")
    assert time.monotonic() - started < 2.0
    assert "no answer" in str(caught.value)
    assert len(whmcs.seen) == 3 and len(made.sleeps) == 2


def test_refused_connection_is_retried_even_for_a_note_and_never_applied(make) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    made = make(url=f"http://127.0.0.1:{port}")
    with pytest.raises(WhmcsUnavailable) as caught:
        made.client.add_ticket_note(3, "Overdue invoices: #1042")
    assert caught.value.attempts == 3
    assert caught.value.maybe_applied is False
    assert "cannot connect" in str(caught.value)


@pytest.mark.parametrize("reply", [html(500), Reply(body=b'{"result":"success"}', delay=0.6)])
def test_note_or_reply_is_not_repeated_once_it_may_have_arrived(whmcs, make, reply) -> None:
    whmcs.handler = lambda form: reply
    made = make(timeout=0.15)
    with pytest.raises(WhmcsUnavailable) as caught:
        made.client.add_ticket_note(3, "note")
    assert caught.value.maybe_applied is True
    with pytest.raises(WhmcsUnavailable) as caught:
        made.client.add_ticket_reply(3, "reply")
    assert caught.value.maybe_applied is True
    assert whmcs.actions() == ["AddTicketNote", "AddTicketReply"]
    assert made.sleeps == []


def test_idempotent_write_is_retried_after_5xx(whmcs, make) -> None:
    whmcs.queue += [html(502), ok(ticketid="9")]
    make().client.update_ticket_priority(9, "Low")
    assert whmcs.actions() == ["UpdateTicket", "UpdateTicket"]


def test_html_error_page_is_unavailable_without_an_excerpt(whmcs, make) -> None:
    whmcs.queue.append(html(200, "<b>Warning</b>: PDO in /home/whmcs/db.php line 12 SECRETROW"))
    with pytest.raises(WhmcsUnavailable) as caught:
        make().client.call("GetClients")
    text = str(caught.value)
    assert "not JSON" in text and "text/html" in text
    assert "SECRETROW" not in text and "PDO" not in text
    assert len(whmcs.seen) == 1


@pytest.mark.parametrize("status", [301, 302, 307])
def test_redirect_is_not_followed(whmcs, make, status) -> None:
    whmcs.queue.append(Reply(status=status, headers={"Location": "http://169.254.169.254/"}))
    with pytest.raises(WhmcsUnavailable) as caught:
        make().client.call("GetClients")
    assert "redirect not followed" in str(caught.value)
    assert len(whmcs.seen) == 1


def test_4xx_that_is_not_a_whmcs_answer_is_unavailable(whmcs, make) -> None:
    whmcs.queue.append(html(404, "<h1>Not Found</h1>"))
    with pytest.raises(WhmcsUnavailable, match="HTTP 404"):
        make().client.call("GetClients")


def test_oversized_body_is_refused(whmcs, make, monkeypatch) -> None:
    monkeypatch.setattr("bridge.whmcs.transport.MAX_BODY_BYTES", 1000)
    whmcs.queue.append(ok(padding="x" * 5000))
    with pytest.raises(WhmcsUnavailable, match="larger than"):
        make().client.call("GetClients")


# --- result=error ---------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "kind"), [
    ("Client Not Found", WhmcsNotFound),
    ("Ticket ID Not Found", WhmcsNotFound),
    ("Invalid Ticket Priority. Valid priorities are: Low,Medium,High", WhmcsApiError),
    ("Duplicate Email Address", WhmcsApiError),
])
def test_result_error_with_http_200_raises_api_error_with_whmcs_message(whmcs, make, message,
                                                                        kind) -> None:
    whmcs.handler = lambda form: error(message)
    made = make()
    with pytest.raises(kind) as caught:
        made.client.get_client(99)
    assert type(caught.value) is kind
    assert caught.value.message == message
    assert caught.value.action == "GetClientsDetails"
    assert len(whmcs.seen) == 1 and made.sleeps == []  # permanent: not retried


def test_status_error_without_result_is_an_error_answer_not_a_bad_response(whmcs,
                                                                          make) -> None:
    # WHMCS 8's GetInvoice for a missing (deleted, merged) invoice (whmcs-reference §6)
    whmcs.queue.append(Reply(body=json.dumps({"status": "error",
                                              "message": "Invoice ID Not Found"}).encode()))
    made = make()
    with pytest.raises(WhmcsNotFound) as caught:
        made.client.get_invoice(404)
    assert (caught.value.action, caught.value.message) == ("GetInvoice", "Invoice ID Not Found")
    assert len(whmcs.seen) == 1 and made.sleeps == []  # permanent: not retried


@pytest.mark.parametrize(("body", "kind"), [
    ({"status": "error", "message": "Invoice ID Not Found"}, WhmcsNotFound),
    ({"status": "error", "message": "Something else"}, WhmcsApiError),
    ({"status": "Error", "message": ""}, WhmcsApiError),
    ({"status": "Unpaid"}, WhmcsResponseError),  # no result, no error: not understood
])
def test_decode_reads_status_error_like_result_error(body, kind) -> None:
    with pytest.raises(kind) as caught:
        decode("GetInvoice", 200, "application/json", json.dumps(body).encode())
    assert type(caught.value) is kind


def test_a_success_answer_may_carry_its_own_status() -> None:
    body = {"result": "success", "invoiceid": "1", "status": "error"}  # an odd invoice status
    assert decode("GetInvoice", 200, "application/json", json.dumps(body).encode()) == body


def test_an_unknown_configuration_setting_reads_as_none(whmcs, make) -> None:
    whmcs.queue += [error("Invalid name for parameter setting"),
                    ok(setting="AutoSuspensionDays", value="5"),
                    error("Setting is required")]
    client = make().client
    assert client.get_configuration_value("NoSuchSetting") is None
    assert client.get_configuration_value("AutoSuspensionDays") == "5"
    with pytest.raises(WhmcsApiError, match="Setting is required"):
        client.get_configuration_value("")


@pytest.mark.parametrize(("message", "status"), [
    ("Authentication Failed", 200),
    ("Authentication Failed", 403),
    ("Invalid or missing credentials", 200),
    ("Invalid Access Key", 200),
    ("Administrator Account Disabled", 200),
    ("Access Denied", 200),
    ("Invalid IP 127.0.0.1", 200),
    ("Forbidden IP 10.0.0.5", 403),
    ('Invalid Permissions: API action "getclients" is not allowed', 403),
])
def test_authentication_failures_raise_auth_error(whmcs, make, message, status) -> None:
    whmcs.queue.append(error(message, status))
    with pytest.raises(WhmcsAuthError) as caught:
        make().client.call("GetClients")
    assert caught.value.message == message
    assert isinstance(caught.value, WhmcsApiError)


def test_secret_and_identifier_never_reach_logs_or_errors(whmcs, make, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    made = make(timeout=0.15)
    client = made.client
    whmcs.queue += [ok(**GET_CLIENT_GROUPS), html(500), ok(**GET_CLIENT_GROUPS),
                    error("Authentication Failed", 403), error("Client Not Found"),
                    html(200), Reply(body=b"{}", delay=0.6), Reply(body=b"{}", delay=0.6),
                    Reply(body=b"{}", delay=0.6), Reply(status=302)]
    raised: list[BaseException] = []
    for _ in range(2):
        client.get_client_groups()
    for call in (lambda: client.call("GetClients"), lambda: client.get_client(5),
                 lambda: client.call("GetClients"), lambda: client.call("GetTickets"),
                 lambda: client.call("GetClients")):
        with pytest.raises(WhmcsError) as caught:
            call()
        raised.append(caught.value)
    assert "retrying" in caplog.text  # the retries were logged
    shown = caplog.text + repr(client) + "".join(f"{e} {e!r} {e.args}" for e in raised)
    for credential in (SECRET, IDENTIFIER, ACCESSKEY):
        assert credential not in shown


# --- parsing of the documented examples -----------------------------------------------------


def test_client_details_from_documented_example(whmcs, make) -> None:
    whmcs.queue.append(ok(**GET_CLIENTS_DETAILS))
    client = make().client.get_client(1)
    assert whmcs.seen[0].form["clientid"] == "1" and "stats" not in whmcs.seen[0].form
    assert client.id == 1 and client.groupid == 0 and client.status == "Active"
    assert client.language is None and client.currency_id == 1
    assert client.currency_code == "USD" and client.credit == Decimal("0.00")
    assert client.datecreated is None
    assert not hasattr(client, "password")


def test_client_groups_read_susptermexempt_flag(whmcs, make) -> None:
    whmcs.queue.append(ok(**GET_CLIENT_GROUPS))
    groups = make().client.get_client_groups()
    assert [(g.id, g.name, g.susptermexempt) for g in groups] == [
        (1, "Client Group 1", True), (2, "Client Group 2", False)]


def test_invoice_list_row_coerces_strings_and_zero_dates(whmcs, make) -> None:
    whmcs.queue.append(page("invoices", "invoice", [GET_INVOICES_ROW], 1))
    [invoice] = list(make().client.iter_invoices(status="Unpaid", userid=1))
    assert whmcs.seen[0].form["status"] == "Unpaid" and whmcs.seen[0].form["userid"] == "1"
    assert invoice.id == 1 and invoice.number == "1" and invoice.userid == 1
    assert invoice.date == date(2016, 1, 1) and invoice.duedate == date(2016, 1, 8)
    assert invoice.datepaid is None
    assert invoice.total == Decimal("15.95") and invoice.currency_prefix == "$"
    with pytest.raises(ValueError, match="balance"):
        invoice.to_policy()  # GetInvoices has no balance for an unpaid invoice
    assert invoice.to_policy(Decimal("5.95")).balance == Decimal("5.95")


def test_invoice_detail_has_balance_and_empty_transactions(whmcs, make) -> None:
    whmcs.queue.append(ok(**{**GET_INVOICE, "invoicenum": "2016-0042", "balance": "5.95"}))
    invoice = make().client.get_invoice(1)
    assert whmcs.seen[0].form["invoiceid"] == "1"
    assert invoice.id == 1 and invoice.number == "2016-0042" and invoice.userid == 2361
    assert invoice.balance == Decimal("5.95") and invoice.transactions == ()
    assert [(i.id, i.type, i.amount) for i in invoice.items] == [(1, "Hosting",
                                                                  Decimal("15.95"))]
    assert invoice.to_policy() == state.Invoice(
        id=1, number="2016-0042", status="Unpaid", date=date(2016, 1, 1),
        duedate=date(2016, 1, 8), total=Decimal("15.95"), balance=Decimal("5.95"),
        datepaid=None)


def test_products_drop_the_service_password(whmcs, make) -> None:
    whmcs.queue.append(page("products", "product", [GET_CLIENTS_PRODUCTS_ROW], 1, start=0))
    [product] = list(make().client.iter_products(clientid=1))
    assert product.status == "Terminated" and product.nextduedate == date(2016, 11, 25)
    assert product.overideautosuspend is False and product.overidesuspenduntil is None
    assert "xxxxxxxx" not in repr(product)
    assert product.to_policy() == state.Service(id=1, status="Terminated", suspendreason="",
                                                nextduedate=date(2016, 11, 25))


def test_tickets_list_and_detail(whmcs, make) -> None:
    whmcs.queue += [ok(totalresults="1", startnumber=0, numreturned=1,
                       tickets={"ticket": [GET_TICKETS_ROW]}), ok(**GET_TICKET)]
    client = make().client
    [ticket] = list(client.iter_tickets(status="All Active Tickets", clientid=1))
    assert whmcs.seen[0].form["ignore_dept_assignments"] == "1"
    assert (ticket.id, ticket.tid, ticket.userid, ticket.deptid) == (1, "516757", 1, 1)
    assert ticket.priority == "Medium" and ticket.date == datetime(2016, 1, 1, 6, 26, 29)
    detail = client.get_ticket(1)
    assert detail.id == 1 and detail.deptname == "Sample Support Department"
    assert [(n.id, n.message, n.admin) for n in detail.notes] == [
        (1, "This is a ticket note", "Demo Admin")]


def test_support_departments(whmcs, make) -> None:
    whmcs.queue.append(ok(**GET_SUPPORT_DEPARTMENTS))
    [department] = make().client.get_support_departments()
    assert (department.id, department.name, department.opentickets) == (
        1, "Sample Support Department", 0)


@pytest.mark.parametrize("empty", ["", None, [], {}, {"invoice": []}, {"invoice": ""}])
def test_empty_list_in_any_of_its_forms(whmcs, make, empty) -> None:
    whmcs.queue.append(ok(totalresults="0", startnumber="0", numreturned="0", invoices=empty))
    assert list(make().client.iter_invoices()) == []
    assert len(whmcs.seen) == 1


def test_empty_lists_in_each_actions_own_shape(whmcs, make) -> None:
    """whmcs-reference §6: GetClients and GetClientGroups leave the key out, GetInvoices and
    GetTicket's notes answer ``[]``, GetInvoice's transactions ``""``; numbers as strings in
    most actions and native integers in some."""
    whmcs.queue += [ok(totalresults="0", startnumber="0", numreturned="0"),
                    ok(totalresults="0"),
                    ok(totalresults=0, startnumber=0, numreturned=0, invoices=[]),
                    ok(**{**GET_TICKET, "notes": [], "ticketid": 1, "deptid": 1, "userid": 0}),
                    ok(**{**GET_INVOICE, "transactions": "", "items": [], "invoiceid": 1,
                          "userid": 2361, "total": 15.95, "balance": 15.95}),
                    ok(totalresults=1, departments={"department": [
                        {"id": 1, "name": "Support", "awaitingreply": 0, "opentickets": 3}]})]
    client = make().client
    assert list(client.iter_clients()) == []
    assert client.get_client_groups() == ()
    assert list(client.iter_invoices()) == []
    ticket = client.get_ticket(1)
    assert (ticket.id, ticket.deptid, ticket.userid, ticket.notes) == (1, 1, 0, ())
    invoice = client.get_invoice(1)
    assert (invoice.id, invoice.userid, invoice.balance, invoice.transactions, invoice.items) \
        == (1, 2361, Decimal("15.95"), (), ())
    [department] = client.get_support_departments()
    assert (department.id, department.opentickets) == (1, 3)


def test_single_item_object_and_php_numbered_object_are_lists() -> None:
    assert p.container_rows({"invoice": {"id": "1"}}, "invoice", "X") == [{"id": "1"}]
    assert p.container_rows({"invoice": {"1": {"id": "b"}, "0": {"id": "a"}}}, "invoice",
                            "X") == [{"id": "a"}, {"id": "b"}]
    with pytest.raises(WhmcsResponseError, match="expected a list of invoice"):
        p.container_rows("oops", "invoice", "X")


@pytest.mark.parametrize(("row", "field"), [
    ({**GET_INVOICES_ROW, "total": "abc"}, "total"),
    ({**GET_INVOICES_ROW, "duedate": "08/01/2016"}, "duedate"),
    ({**GET_INVOICES_ROW, "id": ""}, "id"),
    ({k: v for k, v in GET_INVOICES_ROW.items() if k != "id"}, "id"),
])
def test_unreadable_field_is_a_response_error_naming_the_field(row, field) -> None:
    with pytest.raises(WhmcsResponseError) as caught:
        p.load(p.InvoiceSummarySchema, row, "GetInvoices")
    assert field in str(caught.value)
    assert "abc" not in str(caught.value) and "08/01" not in str(caught.value)


# --- pagination -----------------------------------------------------------------------------


def clients_table(count: int) -> list[dict[str, Any]]:
    return [{**GET_CLIENTS_ROW, "id": str(n), "email": f"c{n}@example.com"}
            for n in range(1, count + 1)]


def serve_table(table: list[dict[str, Any]], *, on_page: Callable[[int], None] | None = None,
                ignore_start: bool = False) -> Callable[[dict[str, str]], Reply]:
    def handler(form: dict[str, str]) -> Reply:
        start = 0 if ignore_start else int(form["limitstart"])
        found = table[start:start + int(form["limitnum"])]
        reply = page("clients", "client", found, len(table), start=str(start))
        if on_page:
            on_page(start)
        return reply
    return handler


def test_pagination_across_three_pages(whmcs, make) -> None:
    whmcs.handler = serve_table(clients_table(7))
    found = list(make().client.iter_clients(page_size=3, status="Active"))
    assert [c.id for c in found] == [1, 2, 3, 4, 5, 6, 7]
    assert [(s.form["limitstart"], s.form["limitnum"]) for s in whmcs.seen] == [
        ("0", "3"), ("3", "3"), ("6", "3")]
    assert all(s.form["status"] == "Active" for s in whmcs.seen)


def test_pagination_survives_rows_added_while_iterating(whmcs, make) -> None:
    table = clients_table(6)

    def grow(start: int) -> None:
        if start == 0:  # a new row sorts first: every later row shifts by one
            table.insert(0, {**GET_CLIENTS_ROW, "id": "100"})
    whmcs.handler = serve_table(table, on_page=grow)
    # a list read in WHMCS's own order (GetTickets, GetClientsProducts take no orderby)
    ids = [int(r["id"]) for r in make().client.paginate("GetClients", "clients", "client",
                                                         page_size=3)]
    assert len(ids) == len(set(ids))  # the shifted row is not yielded twice
    assert set(ids) == {1, 2, 3, 4, 5, 6}  # the late insert is left to the next reconcile


def test_pagination_stops_when_rows_are_deleted_while_iterating(whmcs, make) -> None:
    table = clients_table(9)

    def shrink(start: int) -> None:
        del table[:3]
    whmcs.handler = serve_table(table, on_page=shrink)
    ids = [c.id for c in make().client.iter_clients(page_size=3)]
    assert ids[:3] == [1, 2, 3] and len(ids) == len(set(ids))
    assert len(whmcs.seen) <= 3


def test_pagination_stops_on_an_empty_page_despite_a_stale_total(whmcs, make) -> None:
    whmcs.queue += [page("clients", "client", clients_table(2), 50),
                    ok(totalresults="50", startnumber="2", numreturned="0", clients="")]
    assert len(list(make().client.iter_clients(page_size=2))) == 2
    assert len(whmcs.seen) == 2


def test_pagination_without_totalresults_stops_on_a_short_page(whmcs, make) -> None:
    table = clients_table(5)

    def handler(form: dict[str, str]) -> Reply:
        start = int(form["limitstart"])
        return ok(clients={"client": table[start:start + int(form["limitnum"])]})
    whmcs.handler = handler
    assert [c.id for c in make().client.iter_clients(page_size=2)] == [1, 2, 3, 4, 5]
    assert len(whmcs.seen) == 3  # 2 + 2 + 1: the short page is the last


def serve_whmcs8_clients(table: list[dict[str, Any]]) -> Callable[[dict[str, str]], Reply]:
    """GetClients as WHMCS 8 answers it: ``totalresults`` counted after the offset (0 past
    the first page, whmcs-reference §6), and ``orderby``/``sorting`` honoured."""
    def handler(form: dict[str, str]) -> Reply:
        start, size = int(form["limitstart"]), int(form["limitnum"])
        rows = sorted(table, key=lambda r: int(r["id"]) if form.get("orderby") == "id"
                      else (r["lastname"], -int(r["id"]) * (start + 1) % 7))
        if form.get("sorting") == "DESC":
            rows.reverse()
        found = rows[start:start + size]
        return page("clients", "client", found, len(table) if start == 0 else 0, start=start)
    return handler


def test_clients_are_asked_by_ascending_id_and_read_past_a_zero_totalresults(whmcs,
                                                                            make) -> None:
    whmcs.handler = serve_whmcs8_clients([{**row, "lastname": "Silva"}
                                          for row in clients_table(10)])
    assert [c.id for c in make().client.iter_clients(page_size=3)] == list(range(1, 11))
    assert {(s.form["orderby"], s.form["sorting"]) for s in whmcs.seen} == {("id", "ASC")}
    assert [s.form["limitstart"] for s in whmcs.seen] == ["0", "3", "6", "9"]


def test_invoices_are_asked_by_ascending_id(whmcs, make) -> None:
    whmcs.queue.append(page("invoices", "invoice", [GET_INVOICES_ROW], 1))
    assert len(list(make().client.iter_invoices(userid=1))) == 1
    form = whmcs.seen[0].form
    assert (form["orderby"], form["order"], form["userid"]) == ("id", "asc", "1")


def test_a_whmcs_that_ignores_orderby_id_is_an_error_not_missed_clients(whmcs, make) -> None:
    table = [{**row, "lastname": "Silva"} for row in clients_table(10)]
    serve = serve_whmcs8_clients(table)
    # a WHMCS older than 8.2: orderby unknown, so last name order with unstable ties
    whmcs.handler = lambda form: serve({k: v for k, v in form.items() if k != "orderby"})
    with pytest.raises(WhmcsResponseError, match="ascending id order"):
        list(make().client.iter_clients(page_size=3))


def test_a_whmcs_serving_fewer_rows_than_asked_is_read_to_the_end(whmcs, make) -> None:
    table = clients_table(10)

    def capped(form: dict[str, str]) -> Reply:
        start = int(form["limitstart"])
        return page("clients", "client", table[start:start + 4], len(table), start=start)
    whmcs.handler = capped
    assert [c.id for c in make().client.iter_clients(page_size=100)] == list(range(1, 11))
    assert [s.form["limitstart"] for s in whmcs.seen] == ["0", "4", "8"]


def test_pagination_that_does_not_advance_is_an_error_not_a_loop(whmcs, make) -> None:
    table = clients_table(3)

    def handler(form: dict[str, str]) -> Reply:
        return ok(clients={"client": table[:2]})  # limitstart ignored, no total
    whmcs.handler = handler
    with pytest.raises(WhmcsResponseError, match="does not advance"):
        list(make().client.iter_clients(page_size=2))
    assert len(whmcs.seen) == 2


# --- the policy's view and the writes ------------------------------------------------------


def test_read_client_state_uses_invoice_balances_and_services(whmcs, make) -> None:
    details = {**GET_CLIENTS_DETAILS["client"], "id": "7", "userid": "7", "groupid": "4",
               "language": "portuguese-br"}
    summary = {**GET_CLIENTS_ROW, "id": "7", "email": details["email"],
               "datecreated": "2019-03-04", "groupid": "4"}
    paid = {**GET_INVOICES_ROW, "id": "11", "userid": "7", "status": "Paid", "total": "89.90",
            "datepaid": "2026-10-03 10:00:00", "currencyprefix": "R$", "currencysuffix": ""}
    unpaid = {**GET_INVOICES_ROW, "id": "12", "invoicenum": "1042", "userid": "7",
              "total": "89.90", "duedate": "2026-11-10", "currencyprefix": "R$",
              "currencysuffix": ""}
    partial = {**GET_INVOICE, "invoiceid": "12", "invoicenum": "1042", "userid": "7",
               "total": "89.90", "balance": "39.90", "duedate": "2026-11-10",
               "transactions": {"transaction": [{"id": "3", "date": "2026-11-12",
                                                 "gateway": "boleto", "transid": "b-1",
                                                 "amountin": "50.00", "amountout": "0.00"}]}}
    service = {**GET_CLIENTS_PRODUCTS_ROW, "id": "21", "clientid": "7", "status": "Suspended",
               "suspensionreason": "Overdue on Payment"}
    replies = {"GetClientsDetails": ok(client=details),
               "GetClients": page("clients", "client", [summary], 1),
               "GetInvoices": page("invoices", "invoice", [paid, unpaid], 2),
               "GetInvoice": ok(**partial),
               "GetClientsProducts": page("products", "product", [service], 1)}
    whmcs.handler = lambda form: replies[form["action"]]
    got = make().client.read_client_state(7)
    assert whmcs.actions() == ["GetClientsDetails", "GetClients", "GetInvoices", "GetInvoice",
                               "GetClientsProducts"]
    assert whmcs.seen[1].form["search"] == details["email"]
    assert whmcs.seen[3].form["invoiceid"] == "12"  # only the owed invoice is re-read
    assert got.id == 7 and got.group_id == 4 and got.datecreated == date(2019, 3, 4)
    assert got.language == "portuguese-br"
    assert (got.currency_prefix, got.currency_suffix) == ("R$", "")
    assert [(i.id, i.number, i.status, i.balance) for i in got.invoices] == [
        (11, "11", "Paid", Decimal("0")), (12, "1042", "Unpaid", Decimal("39.90"))]
    assert got.invoices[0].datepaid == date(2026, 10, 3)
    assert got.services == (state.Service(id=21, status="Suspended",
                                          suspendreason="Overdue on Payment",
                                          nextduedate=date(2016, 11, 25)),)
    assert got.promise is None


@pytest.mark.parametrize(("stats", "asked"), [
    ({"numactivetickets": "0", "productsnumtotal": "0"}, []),
    ({"numactivetickets": 0, "productsnumtotal": 2}, ["GetClientsProducts"]),
    ({"numactivetickets": 0, "productsnumtotal": 2, "productsnumactive": 1},
     ["GetClientsProducts"]),  # one is not Active: it may be suspended
    ({"numactivetickets": 0, "productsnumtotal": 2, "productsnumactive": "2"}, []),
    ({"numactivetickets": "1", "productsnumtotal": "0"}, ["GetTickets"]),
    # WHMCS did not say (an older version, a key renamed, no stats): read both
    ({"numdueinvoices": "0"}, ["GetClientsProducts", "GetTickets"]),
    ({"numactivetickets": "many", "productsnumtotal": ""}, ["GetClientsProducts", "GetTickets"]),
    ("", ["GetClientsProducts", "GetTickets"]),
])
def test_read_client_skips_reads_its_stats_show_empty(whmcs, make, stats, asked) -> None:
    details = {**GET_CLIENTS_DETAILS["client"], "datecreated": "2019-03-04"}
    ticket = {**GET_TICKETS_ROW, "status": "Open"}
    replies = {"GetClientsDetails": ok(client=details, stats=stats),
               "GetInvoices": page("invoices", "invoice", [], 0),
               "GetClientsProducts": page("products", "product", [GET_CLIENTS_PRODUCTS_ROW], 1),
               "GetTickets": page("tickets", "ticket", [ticket], 1)}
    whmcs.handler = lambda form: replies[form["action"]]
    client, tickets = make().client.read_client(1)
    assert whmcs.actions() == ["GetClientsDetails", "GetInvoices", *asked]
    assert whmcs.seen[0].form["stats"] == "1"
    assert len(client.services) == (1 if "GetClientsProducts" in asked else 0)
    assert [t.id for t in tickets] == ([1] if "GetTickets" in asked else [])


def test_datecreated_is_read_once_per_client(whmcs, make) -> None:
    """GetClientsDetails lacks ``datecreated``: GetClients gives it once, then it is kept."""
    details = {**GET_CLIENTS_DETAILS["client"], "id": "7", "userid": "7"}
    summary = {**GET_CLIENTS_ROW, "id": "7", "email": details["email"],
               "datecreated": "2019-03-04"}
    replies = {"GetClientsDetails": ok(client=details),
               "GetClients": page("clients", "client", [summary], 1),
               "GetInvoices": page("invoices", "invoice", [], 0),
               "GetClientsProducts": page("products", "product", [], 0)}
    whmcs.handler = lambda form: replies[form["action"]]
    client = make().client
    assert [client.read_client_state(7).datecreated for _ in range(2)] == [date(2019, 3, 4)] * 2
    assert whmcs.actions().count("GetClients") == 1
    replies["GetClients"] = page("clients", "client", [], 0)  # another client: not found
    with pytest.raises(WhmcsResponseError, match="no datecreated for client 8"):
        client.datecreated(p.load(p.ClientDetailsSchema, {**details, "id": "8"}, "t"))


@pytest.mark.parametrize(("known_status", "reads"), [("Unpaid", 0), ("Payment Pending", 1)])
def test_a_known_invoice_is_not_read_again_unless_its_status_moved(whmcs, make, known_status,
                                                                    reads) -> None:
    unpaid = {**GET_INVOICES_ROW, "id": "12", "userid": "7", "total": "89.90"}
    replies = {"GetInvoices": page("invoices", "invoice", [unpaid], 1),
               "GetInvoice": ok(**{**GET_INVOICE, "invoiceid": "12", "balance": "89.90"})}
    whmcs.handler = lambda form: replies[form["action"]]
    known = p.load(p.InvoiceDetailsSchema, {**GET_INVOICE, "invoiceid": "12", "userid": "7",
                                            "status": known_status, "balance": "39.90"}, "t")
    invoices, _, _ = make().client.policy_invoices(7, known={12: known})
    assert whmcs.actions().count("GetInvoice") == reads
    assert invoices[0].balance == Decimal("39.90" if reads == 0 else "89.90")


def test_writes_send_the_documented_parameters(whmcs, make) -> None:
    client = make().client
    client.update_client_group(7, 0)
    client.update_ticket_priority(9, "High")
    client.add_ticket_note(9, "Fatura #1042 R$ 89,90 vencida há 6 dias")
    client.add_ticket_reply(9, "Please pay invoice #1042", adminusername="vipgate",
                            noemail=True)
    forms = [{k: v for k, v in s.form.items()
              if k not in ("identifier", "secret", "accesskey", "responsetype")}
             for s in whmcs.seen]
    assert forms == [
        {"action": "UpdateClient", "clientid": "7", "groupid": "0"},
        {"action": "UpdateTicket", "ticketid": "9", "priority": "High"},
        {"action": "AddTicketNote", "ticketid": "9",
         "message": "Fatura #1042 R$ 89,90 vencida há 6 dias"},
        {"action": "AddTicketReply", "ticketid": "9", "message": "Please pay invoice #1042",
         "adminusername": "vipgate", "noemail": "1"},
    ]


def test_unknown_priority_is_refused_before_sending(whmcs, make) -> None:
    with pytest.raises(ValueError, match="Low, Medium, High"):
        make().client.update_ticket_priority(9, "Urgent")
    assert whmcs.seen == []


# --- fuzzing the parser ---------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.just(""), st.just("0000-00-00"),
    st.just("0000-00-00 00:00:00"), st.just("on"),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=0, max_value=10**6).map(str),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("1E+999999999"), Decimal("-1E-999999999"), Decimal("sNaN"),
                     Decimal("-0"), Decimal("12.50"), 10**19, 1.5e300]),
    st.decimals(min_value=0, max_value=10**6, places=2).map(str),
    st.dates().map(str), st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.text(max_size=12),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)
SCHEMAS = [p.ClientSummarySchema, p.ClientDetailsSchema, p.ClientGroupSchema,
           p.InvoiceSummarySchema, p.InvoiceDetailsSchema, p.ProductSchema, p.TicketSchema,
           p.TicketDetailsSchema, p.DepartmentSchema]
EXAMPLES = [GET_CLIENTS_ROW, GET_CLIENTS_DETAILS["client"], GET_CLIENT_GROUPS["groups"]["group"][0],
            GET_INVOICES_ROW, GET_INVOICE, GET_CLIENTS_PRODUCTS_ROW, GET_TICKETS_ROW, GET_TICKET,
            GET_SUPPORT_DEPARTMENTS["departments"]["department"][0]]
KEYS = sorted({key for example in EXAMPLES for key in example}
              | {"ticketid", "invoiceid", "noteid", "note", "item", "transaction"})


@st.composite
def quirky_rows(draw: st.DrawFn, only: int | None = None) -> tuple[int, Any]:
    """A documented example with some keys dropped and some values replaced by quirks."""
    index = draw(st.integers(0, len(SCHEMAS) - 1)) if only is None else only
    if draw(st.integers(0, 9)) == 0:
        return index, draw(VALUES)  # not even an object
    row = dict(EXAMPLES[index])
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=6)):
        if draw(st.booleans()):
            row.pop(key, None)
        else:
            row[key] = draw(VALUES)
    return index, row


@settings(max_examples=400, deadline=None)
@given(quirky_rows())
def test_parser_returns_a_value_or_raises_only_whmcs_errors(case) -> None:
    index, row = case
    try:
        parsed = p.load(SCHEMAS[index], row, "Fuzz")
    except WhmcsError:
        return
    assert isinstance(parsed, SCHEMAS[index].model)


@settings(max_examples=300, deadline=None)
@given(st.one_of(VALUES, st.dictionaries(st.text("0123456789²٣", max_size=3), VALUES,
                                         max_size=3)),
       st.sampled_from(["invoice", "client", "ticket"]))
def test_container_reader_returns_a_list_or_raises_only_whmcs_errors(value, item) -> None:
    with contextlib.suppress(WhmcsError):
        assert isinstance(p.container_rows(value, item, "Fuzz"), list)


def json_text(value: Any) -> bytes:
    return json.dumps(value, default=str).encode()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), VALUES.map(json_text),
                 st.fixed_dictionaries({"result": st.sampled_from(["success", "error", "",
                                                                   "ERROR"]),
                                        "message": VALUES}).map(json_text),
                 st.just(b"\xef\xbb\xbf{\"result\":\"success\"}"),
                 st.just(b"[" * 5000), st.just(b'{"n": NaN}'), st.just(b"1" * 5000)),
       st.sampled_from([200, 400, 403, 404]), st.text(max_size=30))
def test_body_decoder_returns_an_object_or_raises_only_whmcs_errors(body, status,
                                                                   content_type) -> None:
    try:
        assert isinstance(decode("Fuzz", status, content_type, body), dict)
    except WhmcsError as exc:
        assert len(str(exc)) < 400


@settings(max_examples=100, deadline=None)
@given(st.lists(quirky_rows(only=3).map(lambda c: c[1]), max_size=4))
def test_invoice_rows_convert_to_policy_or_raise_whmcs_or_value_errors(found) -> None:
    for row in found:
        try:
            invoice = p.load(p.InvoiceSummarySchema, row, "Fuzz")
            converted = invoice.to_policy(Decimal("1.00"))
        except WhmcsError:
            continue
        assert isinstance(converted, state.Invoice)


def test_currencies_and_the_client_count(whmcs, make) -> None:
    whmcs.queue += [
        ok(totalresults="2", currencies={"currency": [
            {"id": "1", "code": "BRL", "prefix": "R$ ", "suffix": "", "format": "1",
             "rate": "1.00000"},
            {"id": "2", "code": "USD", "prefix": "$", "suffix": " USD", "format": "1",
             "rate": "0.19000"}]}),
        ok(totalresults="1234", startnumber=0, numreturned=1,
           clients={"client": [{"id": "1"}]}),
        ok(totalresults="0", currencies="")]
    client = make().client
    brl, usd = client.get_currencies()
    assert (brl.id, brl.prefix, brl.rate) == (1, "R$ ", Decimal("1"))
    assert (usd.code, usd.suffix, usd.rate) == ("USD", " USD", Decimal("0.19"))
    assert client.count_clients() == 1234
    assert client.get_currencies() == ()
    assert whmcs.actions() == ["GetCurrencies", "GetClients", "GetCurrencies"]


def test_the_trust_unlocks_calls(whmcs, make) -> None:
    """UpdateClientProduct's override on until a date and off, ModuleUnsuspend, and one
    service read by its id (None when WHMCS has none)."""
    row = {**GET_CLIENTS_PRODUCTS_ROW, "status": "Suspended", "overideautosuspend": "1",
           "overidesuspenduntil": "2026-12-10"}
    whmcs.queue += [ok(serviceid="1"), ok(serviceid="1"), ok(),
                    page("products", "product", [row], 1, start=0),
                    page("products", "product", [], 0, start=0)]
    client = make().client
    client.set_suspend_override(1, date(2026, 12, 10))
    client.set_suspend_override(1, None)
    client.unsuspend_service(1)
    product = client.get_service(1)
    assert product is not None and product.overideautosuspend is True
    assert product.overidesuspenduntil == date(2026, 12, 10)
    assert client.get_service(2) is None
    forms = [dict(r.form) for r in whmcs.seen]
    assert forms[0]["action"] == "UpdateClientProduct" and (
        forms[0]["overideautosuspend"], forms[0]["overidesuspenduntil"]) == ("on", "2026-12-10")
    assert forms[1]["overideautosuspend"] == "off" and "overidesuspenduntil" not in forms[1]
    assert (forms[2]["action"], forms[2]["serviceid"]) == ("ModuleUnsuspend", "1")
    assert (forms[3]["action"], forms[3]["serviceid"]) == ("GetClientsProducts", "1")
