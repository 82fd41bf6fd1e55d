"""hypothesis fuzzing of the WHMCS API client (bridge.whmcs) through its public methods.

The client's ``requests`` session is replaced by a fake that answers each POST with a drawn
HTTP response (no network): WHMCS's documented answers (tests/test_whmcs_client.py) with quirks
applied at random — numbers as strings and strings as numbers, ``""``/``[]``/``{}``/``null`` for
lists and objects, list containers in each of WHMCS's shapes, keys dropped or added, zero
dates, floats, NaN — and answers that are not WHMCS's at all: HTML error pages, truncated JSON,
empty bodies, a BOM, bytes that are not UTF-8, ``result=error``, redirects, 4xx and 5xx, and
``requests`` exceptions (refused, timeouts, TLS, broken chunked bodies).

Every public read and write must then either return well-typed values (each dataclass field of
its declared type: ints that are not bools, finite Decimals, dates, nested tuples...) or raise a
:class:`WhmcsError` subclass — never another exception type. Bounded and reproducible:
``derandomize=True``, no example database; ``FUZZ_SCALE=10`` for a longer local run.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import os
import types
import typing
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from bridge.policy import state
from bridge.settings import WhmcsSettings
from bridge.whmcs import WhmcsClient, WhmcsError
from bridge.whmcs import models as m
from tests.test_whmcs_client import (
    GET_CLIENT_GROUPS,
    GET_CLIENTS_DETAILS,
    GET_CLIENTS_PRODUCTS_ROW,
    GET_CLIENTS_ROW,
    GET_INVOICE,
    GET_INVOICES_ROW,
    GET_SUPPORT_DEPARTMENTS,
    GET_TICKET,
    GET_TICKETS_ROW,
)

SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
FUZZ = settings(derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
SETTINGS = WhmcsSettings(url="https://billing.example.invalid", identifier="fuzzIdentifier",
                         secret="fuzzSecret", accesskey="", timeout_seconds=5.0,
                         database_url="")
MAX_CALLS = 6  # then the fake answers an empty page, so pagination ends


def _page(container: str, item: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"result": "success", "totalresults": "2", "startnumber": "0", "numreturned": "2",
            container: {item: [row, {**row, "id": "2"}]}}


# What WHMCS answers to each action, as documented (the quirks are applied on top).
TEMPLATES: dict[str, dict[str, Any]] = {
    "GetClientsDetails": {"result": "success", **GET_CLIENTS_DETAILS,
                          **GET_CLIENTS_DETAILS["client"]},
    "GetClients": _page("clients", "client", GET_CLIENTS_ROW),
    "GetInvoices": _page("invoices", "invoice", GET_INVOICES_ROW),
    "GetInvoice": {"result": "success", **GET_INVOICE},
    "GetTickets": _page("tickets", "ticket", GET_TICKETS_ROW),
    "GetTicket": {"result": "success", **GET_TICKET},
    "GetClientsProducts": _page("products", "product", GET_CLIENTS_PRODUCTS_ROW),
    "GetClientGroups": {"result": "success", **GET_CLIENT_GROUPS},
    "GetSupportDepartments": {"result": "success", **GET_SUPPORT_DEPARTMENTS},
    "GetCurrencies": {"result": "success", "totalresults": "1", "currencies": {"currency": [
        {"id": "1", "code": "BRL", "prefix": "R$ ", "suffix": "", "format": "1",
         "rate": "1.00000"}]}},
    "GetConfigurationValue": {"result": "success", "setting": "AutoSuspensionDays",
                              "value": "7"},
    "UpdateClient": {"result": "success", "clientid": "1"},
    "UpdateTicket": {"result": "success", "ticketid": "1"},
    "AddTicketNote": {"result": "success"},
    "AddTicketReply": {"result": "success"},
}
EMPTY_PAGES = {"GetClients": "clients", "GetInvoices": "invoices", "GetTickets": "tickets",
               "GetClientsProducts": "products"}
HTML_PAGE = (b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
             b"<body><h1>Fatal error</h1><p>Uncaught PDOException in /home/whmcs/vendor"
             b"</p></body></html>")

# --- quirky JSON --------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.just(""), st.just("0000-00-00"),
    st.just("0000-00-00 00:00:00"), st.sampled_from(["on", "off", "Unpaid", "Payment Pending",
                                                     "Suspended", "Active", "<b>x</b>"]),
    st.integers(), st.integers(0, 10**6).map(str), st.sampled_from(["99999999999999999999",
                                                                   "-1", "1e3", "12,50"]),
    st.floats(), st.decimals(min_value=-10**6, max_value=10**6, places=2).map(str),
    st.dates().map(str), st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.sampled_from(["2026-02-30", "2026-11-21T10:00:00", "21/11/2026", "2026-11-21 25:61"]),
    st.text(max_size=12),
)
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


def swapped(value: Any) -> st.SearchStrategy[Any]:
    """The same value in WHMCS's other spelling: "12" ↔ 12, "1.50" ↔ 1.5, "on" ↔ true."""
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return st.sampled_from([int(text), float(text)])
        try:
            return st.just(float(text))
        except ValueError:
            return st.sampled_from([True, False, 1])
    if isinstance(value, bool):
        return st.sampled_from(["on", "", "1", "0"])
    if isinstance(value, int | float):
        return st.just(str(value))
    return st.just(value)


def _list_shapes(rows: list[Any], item: str) -> st.SearchStrategy[Any]:
    """One list container in each of the shapes WHMCS and PHP produce."""
    return st.sampled_from([
        {item: rows}, rows, {item: rows[0]} if rows else "", "", [], {},
        {str(n): row for n, row in enumerate(rows)}, None, {item: ""},
    ])


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with quirks: mostly kept, sometimes respelled, emptied, dropped or replaced."""
    roll = draw(st.integers(1, 20))
    if roll == 20:
        return draw(junk)
    if roll == 19:
        return draw(st.sampled_from(["", None, [], {}]))
    if roll >= 17:
        return draw(swapped(value))
    if isinstance(value, dict) and depth < 4:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            if key != "result" and draw(st.integers(1, 12)) == 12:
                continue  # key missing
            if isinstance(inner, dict) and len(inner) == 1 and isinstance(
                    next(iter(inner.values())), list) and draw(st.integers(1, 3)) == 3:
                (item, rows), = inner.items()
                out[key] = draw(_list_shapes([draw(mutated(r, depth + 2)) for r in rows], item))
                continue
            out[key] = inner if key == "result" else draw(mutated(inner, depth + 1))
        if draw(st.integers(1, 8)) == 8:
            out[draw(st.text(max_size=8))] = draw(junk)  # a key WHMCS added
        return out
    if isinstance(value, list) and depth < 4:
        rows = [draw(mutated(row, depth + 1)) for row in value]
        if rows and draw(st.integers(1, 8)) == 8:
            rows.append(rows[0])  # a repeated row (pagination must not loop on it)
        return rows
    return value


@dataclasses.dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    error: BaseException | None = None


def _truncate(body: bytes, cut: int) -> bytes:
    return body[:max(0, min(cut, len(body) - 1))]


@st.composite
def answers(draw: st.DrawFn, action: str) -> Answer:
    template = TEMPLATES.get(action, {"result": "success"})
    document = copy.deepcopy(draw(mutated(template)))  # never a template itself
    kind = draw(st.integers(1, 40))
    if isinstance(document, dict) and kind == 29:
        # WHMCS 8's error without a result key (whmcs-reference §6)
        document = {"status": draw(st.sampled_from(["error", "Error", "Unpaid", "", None])),
                    "message": draw(st.sampled_from(["Invoice ID Not Found", ""]) | junk)}
    if isinstance(document, dict) and kind in (30, 31):
        document["result"] = draw(st.sampled_from(["error", "ERROR", "Success", "", None, 1]))
        document["message"] = draw(st.sampled_from([
            "Authentication Failed", "Invalid or missing credentials", "Invalid Access Key",
            "Administrator Account Disabled", "Access Denied", "Invalid IP 203.0.113.9",
            "Client Not Found", "Invalid name for parameter setting",
            "Ticket ID Not Found", "Invalid Permissions: API action \"x\" is not allowed",
            "", None, "<b>Fatal</b>\n\x00"]) | junk)
    body = json.dumps(document, default=str).encode()
    status = 200
    content_type = draw(st.sampled_from(["application/json", "application/json; charset=utf-8",
                                         "text/html; charset=UTF-8", ""]))
    if kind == 32:
        body = _truncate(body, draw(st.integers(0, len(body))))
    elif kind == 33:
        body, content_type = HTML_PAGE, "text/html; charset=UTF-8"
        status = draw(st.sampled_from([200, 403, 404, 500, 502, 503]))
    elif kind == 34:
        body = draw(st.sampled_from([b"", b"null", b"[]", b'"success"', b"\xef\xbb\xbf" + body,
                                     b"\xff\xfe" + body, b"[" * 3000, b'{"result": NaN}',
                                     b"9" * 5000]) | st.binary(max_size=40))
    elif kind == 35:
        status = draw(st.sampled_from([201, 204, 301, 302, 400, 401, 403, 404, 429, 500, 502,
                                       503]))
    elif kind == 36:
        return Answer(error=draw(st.sampled_from([
            requests.exceptions.ConnectionError("refused"),
            requests.exceptions.ConnectTimeout("connect timeout"),
            requests.exceptions.ReadTimeout("read timeout"),
            requests.exceptions.SSLError("certificate verify failed"),
            requests.exceptions.ChunkedEncodingError("connection broken"),
            requests.exceptions.ContentDecodingError("bad gzip"),
        ])))
    return Answer(status, body, content_type)


class FakeSession(requests.Session):
    """A ``requests.Session`` whose POSTs are answered by ``answer(action)``, no network."""

    def __init__(self, answer: Callable[[str, int], Answer]) -> None:
        super().__init__()
        self.answer = answer
        self.calls: list[str] = []

    def post(self, url: Any, data: Any = None, json: Any = None,
             **kwargs: Any) -> requests.Response:
        action = data["action"]
        self.calls.append(action)
        answer = self.answer(action, len(self.calls))
        if answer.error is not None:
            raise answer.error
        response = requests.Response()
        response.status_code = answer.status
        response.headers = CaseInsensitiveDict({"Content-Type": answer.content_type})
        response.raw = io.BytesIO(answer.body)
        response.url = url
        return response


def fake_client(data: st.DataObject) -> WhmcsClient:
    def answer(action: str, n: int) -> Answer:
        if n > MAX_CALLS:
            container = EMPTY_PAGES.get(action)
            document = {"result": "success", "totalresults": "0"}
            if container:
                document[container] = ""
            return Answer(body=json.dumps(document).encode())
        return data.draw(answers(action), label=f"answer {n} to {action}")

    return WhmcsClient(SETTINGS, session=FakeSession(answer), sleep=lambda _s: None,
                       rng=lambda: 0.0)


# --- well-typed -----------------------------------------------------------------------------------


def check_type(value: Any, expected: Any, where: str) -> None:
    origin = typing.get_origin(expected)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(expected)
        if value is None and type(None) in options:
            return
        non_none = [o for o in options if o is not type(None)]
        assert len(non_none) == 1, (where, expected)
        check_type(value, non_none[0], where)
        return
    if origin is tuple:
        assert isinstance(value, tuple), (where, value)
        (inner, _ellipsis) = typing.get_args(expected)
        for n, item in enumerate(value):
            check_type(item, inner, f"{where}[{n}]")
        return
    if expected is int:
        assert type(value) is int, (where, value)
    elif expected is bool:
        assert type(value) is bool, (where, value)
    elif expected is Decimal:
        assert isinstance(value, Decimal) and value.is_finite(), (where, value)
    elif expected is date:
        assert type(value) is date, (where, value)
    elif expected is datetime:
        assert type(value) is datetime, (where, value)
    elif expected is str:
        assert isinstance(value, str), (where, value)
    elif dataclasses.is_dataclass(expected):
        assert isinstance(value, expected), (where, value)
        hints = typing.get_type_hints(expected)
        for f in dataclasses.fields(expected):
            check_type(getattr(value, f.name), hints[f.name], f"{where}.{f.name}")
    else:  # pragma: no cover - a type this checker does not know yet
        raise AssertionError(f"{where}: cannot check {expected!r}")


# --- the entry points ----------------------------------------------------------------------------

ENTRY_POINTS: dict[str, tuple[Callable[[WhmcsClient], Any], Any]] = {
    "get_client": (lambda c: c.get_client(1), m.ClientDetails),
    "get_invoice": (lambda c: c.get_invoice(1), m.InvoiceDetails),
    "get_ticket": (lambda c: c.get_ticket(1), m.TicketDetails),
    "get_client_groups": (lambda c: c.get_client_groups(), tuple[m.ClientGroup, ...]),
    "get_currencies": (lambda c: c.get_currencies(), tuple[m.Currency, ...]),
    "get_support_departments": (lambda c: c.get_support_departments(),
                                tuple[m.Department, ...]),
    "get_configuration_value": (lambda c: c.get_configuration_value("AutoSuspensionDays"),
                                str | None),
    "count_clients": (lambda c: c.count_clients(), int),
    "iter_clients": (lambda c: tuple(c.iter_clients()), tuple[m.ClientSummary, ...]),
    "iter_invoices": (lambda c: tuple(c.iter_invoices(userid=1)),
                      tuple[m.InvoiceSummary, ...]),
    "iter_tickets": (lambda c: tuple(c.iter_tickets(clientid=1)), tuple[m.Ticket, ...]),
    "iter_products": (lambda c: tuple(c.iter_products(clientid=1)), tuple[m.Product, ...]),
    "policy_services": (lambda c: c.policy_services(1), tuple[state.Service, ...]),
    "policy_invoices": (lambda c: c.policy_invoices(1)[0], tuple[state.Invoice, ...]),
    "read_client_state": (lambda c: c.read_client_state(1), state.ClientState),
    "update_client_group": (lambda c: c.update_client_group(1, 2), type(None)),
    "update_ticket_priority": (lambda c: c.update_ticket_priority(1, "Low"), type(None)),
    "add_ticket_note": (lambda c: c.add_ticket_note(1, "note"), type(None)),
    "add_ticket_reply": (lambda c: c.add_ticket_reply(1, "reply"), type(None)),
}


@pytest.fixture(scope="module")
def outcomes() -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    yield counts
    print("\nWHMCS client outcomes:", dict(sorted(counts.items())))


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_point_returns_typed_values_or_raises_whmcs_errors(entry: str,
                                                                 outcomes: Counter[str]) -> None:
    method, expected = ENTRY_POINTS[entry]

    @settings(FUZZ, max_examples=70 * SCALE)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        with fake_client(data) as client:
            try:
                value = method(client)
            except WhmcsError as exc:
                outcomes[type(exc).__name__] += 1
                assert str(exc) and len(str(exc)) < 400
                return
            outcomes["value"] += 1
            if expected is type(None):
                assert value is None
            else:
                check_type(value, expected, entry)

    run()


@settings(FUZZ, max_examples=150 * SCALE)
@example(action="GetInvoice", body=b'{"result":"success","invoiceid":"1","balance":"1E+999999999"}')
@example(action="GetTickets", body=b'{"result":"success","tickets":{"ticket":{"0":"x"}}}')
@example(action="GetClientsDetails", body=b'{"result":"success","client":"","id":"7"}')
@given(action=st.sampled_from(sorted(TEMPLATES)),
       body=st.one_of(st.binary(max_size=80), junk.map(lambda v: json.dumps(v).encode())))
def test_call_with_any_body_returns_an_object_or_raises_whmcs_errors(action: str,
                                                                     body: bytes) -> None:
    """The lowest public layer, ``call``: any bytes at all come back as a dict or a
    WhmcsError."""
    session = FakeSession(lambda _action, _n: Answer(body=body))
    client = WhmcsClient(SETTINGS, session=session, sleep=lambda _s: None, rng=lambda: 0.0)
    with client, contextlib.suppress(WhmcsError):
        assert isinstance(client.call(action), dict)


def test_fake_session_serves_the_documented_answers() -> None:
    """Sanity check of the harness: unmutated templates give the documented values."""
    session = FakeSession(lambda action, _n: Answer(body=json.dumps(TEMPLATES[action]).encode()))
    with WhmcsClient(SETTINGS, session=session, sleep=lambda _s: None) as client:
        assert client.get_client(1).email == "test-client@example.com"
        assert [g.susptermexempt for g in client.get_client_groups()] == [True, False]
        assert client.get_invoice(1).balance == Decimal("15.95")
        assert [row.id for row in client.iter_clients()] == [1, 2]
