"""API roles in the sandbox WHMCS (tbldeviceauth → tblapi_roles), and the permission probe of
``bridge.checks`` that relies on them: WHMCS checks the credential's roles before it looks at
the action's parameters, so a call naming an id that cannot exist tells "not allowed" from
"allowed" without changing anything (whmcs-reference §2.1, §5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.checks import (
    NEEDED_ACTIONS,
    PROBES,
    READ_ACTIONS,
    WRITE_ACTIONS,
    missing_actions,
    permission_warnings,
    probe_permissions,
)
from bridge.sandbox.actions_common import registered_actions
from bridge.sandbox.serve import RunningSandbox
from bridge.sandbox.whmcs import Sandbox, SandboxClock
from bridge.settings import default_settings
from bridge.whmcs import WhmcsAuthError, WhmcsClient, WhmcsNotFound
from bridge.whmcs.schema import metadata, tbldeviceauth

FULL_ID, FULL_SECRET = "vipgate-full", "full-secret-0001"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(f"sqlite:///{tmp_path}/whmcs.db",
                      clock=SandboxClock(datetime(2026, 11, 21, 9, 0)))
    sandbox.add_api_credential(FULL_ID, FULL_SECRET)
    with sandbox.quiet():
        client = sandbox.add_client("Ana", "Souza")
        dept = sandbox.add_department("Suporte")
        sandbox.open_ticket(client, dept, "Site fora do ar", "High")
    yield sandbox
    sandbox.dispose()


def api(served: RunningSandbox, identifier: str = FULL_ID,
        secret: str = FULL_SECRET) -> WhmcsClient:
    settings = default_settings().replace(whmcs={
        "url": served.url, "identifier": identifier, "secret": secret, "timeout_seconds": 5})
    return WhmcsClient(settings.whmcs, attempts=1)


def limited(sandbox: Sandbox, served: RunningSandbox, lacking: set[str],
            name: str = "limited") -> WhmcsClient:
    """A client over a credential whose role allows every action but ``lacking``."""
    sandbox.add_api_credential(name, f"{name}-secret",
                               [a for a in registered_actions() if a not in lacking])
    return api(served, name, f"{name}-secret")


def whmcs_state(sandbox: Sandbox) -> dict[str, list[tuple[Any, ...]]]:
    with sandbox.engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(t.select())]
                for t in metadata.sorted_tables}


def test_every_needed_action_has_a_probe_and_is_one_the_sandbox_answers() -> None:
    assert list(PROBES) == list(NEEDED_ACTIONS)
    assert set(NEEDED_ACTIONS) <= set(registered_actions())
    assert not set(READ_ACTIONS) & set(WRITE_ACTIONS)


@pytest.mark.parametrize(("action", "params", "when_allowed"), [
    ("UpdateClient", {"clientid": 0}, "Client ID Not Found"),
    ("UpdateTicket", {"ticketid": 0}, "Ticket ID Not Found"),
    ("AddTicketNote", {"ticketid": 0, "message": "x"}, "Ticket ID not found"),
    ("GetTicket", {"ticketid": 0}, "Ticket ID Not Found"),
    ("GetInvoice", {"invoiceid": 0}, "Invoice ID Not Found"),
    ("GetClientsDetails", {"clientid": 0}, "Client Not Found"),
])
def test_the_role_is_checked_before_the_parameters(
        sandbox: Sandbox, served: RunningSandbox, action: str, params: dict[str, Any],
        when_allowed: str) -> None:
    with pytest.raises(WhmcsAuthError) as refused:
        limited(sandbox, served, {action}).call(action, params)
    assert refused.value.message == (
        f'Invalid Permissions: API action "{action.lower()}" is not allowed')
    with pytest.raises(WhmcsNotFound) as allowed:
        api(served).call(action, params)
    assert allowed.value.message == when_allowed


def test_none_allows_every_action_and_a_list_only_its_actions(sandbox: Sandbox) -> None:
    assert sandbox.authenticate(FULL_ID, FULL_SECRET) == {
        a.lower() for a in registered_actions()}
    sandbox.add_api_credential("reader", "reader-secret", ["GetClients", "getinvoices"])
    assert sandbox.authenticate("reader", "reader-secret") == {"getclients", "getinvoices"}
    assert sandbox.authenticate("reader", "wrong") is None


def test_any_one_of_several_roles_allowing_the_action_suffices(
        sandbox: Sandbox, served: RunningSandbox) -> None:
    sandbox.add_api_credential("clients", "clients-secret", ["GetClients"])
    sandbox.add_api_credential("tickets", "tickets-secret", ["UpdateTicket"])
    with sandbox.engine.begin() as conn:
        roles = dict(conn.execute(sa.select(tbldeviceauth.c.identifier,
                                            tbldeviceauth.c.role_ids)).all())
        both = json.loads(roles["clients"]) + json.loads(roles["tickets"])
        conn.execute(tbldeviceauth.update().where(tbldeviceauth.c.identifier == "clients")
                     .values(role_ids=json.dumps(both)))
    answers = probe_permissions(api(served, "clients", "clients-secret"),
                                ["GetClients", "UpdateTicket", "GetInvoices"])
    assert missing_actions(answers) == ["GetInvoices"]


@pytest.mark.parametrize("lacking", [
    set(),
    {"UpdateTicket"},
    {"UpdateClient", "AddTicketNote", "GetTicket"},
    set(WRITE_ACTIONS),
    set(NEEDED_ACTIONS),
])
def test_the_probe_finds_exactly_the_actions_the_role_lacks(
        sandbox: Sandbox, served: RunningSandbox, lacking: set[str]) -> None:
    answers = probe_permissions(limited(sandbox, served, lacking))
    assert set(answers) == set(NEEDED_ACTIONS)
    assert missing_actions(answers) == [a for a in NEEDED_ACTIONS if a in lacking]


def test_probing_changes_nothing_in_whmcs(sandbox: Sandbox, served: RunningSandbox) -> None:
    before, fired = whmcs_state(sandbox), len(sandbox.fired)
    answers = probe_permissions(api(served))
    assert missing_actions(answers) == []
    assert {a for a, message in answers.items() if message is not None} == {
        "GetClientsDetails", "GetInvoice", "GetTicket", "UpdateClient", "UpdateTicket",
        "AddTicketNote"}  # the id-0 calls: "... Not Found"
    assert whmcs_state(sandbox) == before
    assert len(sandbox.fired) == fired  # no hook: nothing happened in WHMCS


@pytest.mark.parametrize(("identifier", "secret", "allowed_ips", "message"), [
    (FULL_ID, "wrong", None, "Invalid or missing credentials"),
    ("nobody", FULL_SECRET, None, "Invalid or missing credentials"),
    (FULL_ID, FULL_SECRET, ("203.0.113.9",), "Invalid IP 127.0.0.1"),
])
def test_a_refused_credential_raises_instead_of_reporting_every_action_missing(
        sandbox: Sandbox, served: RunningSandbox, identifier: str, secret: str,
        allowed_ips: tuple[str, ...] | None, message: str) -> None:
    if allowed_ips is not None:
        sandbox.allow_api_ips(*allowed_ips)
    with pytest.raises(WhmcsAuthError) as refused:
        probe_permissions(api(served, identifier, secret))
    assert refused.value.message == message


def test_the_probe_stops_asking_at_the_deadline(sandbox: Sandbox,
                                                served: RunningSandbox) -> None:
    ticks = count()
    answers = probe_permissions(api(served), deadline=3, monotonic=lambda: next(ticks))
    assert list(answers) == list(NEEDED_ACTIONS[:3])
    assert len(sandbox.api_log) == 3


@pytest.mark.parametrize(("answers", "expected"), [
    ({}, []),
    ({"UpdateTicket": None, "GetTicket": "Ticket ID Not Found"}, []),
    ({"UpdateTicket": 'Invalid Permissions: API action "updateticket" is not allowed',
      "GetClients": None}, ["UpdateTicket"]),
    ({"AddTicketNote": "invalid permissions", "GetClients": "INVALID PERMISSIONS: x",
      "UpdateClient": "Client ID Not Found"}, ["GetClients", "AddTicketNote"]),
    ({"NotNeeded": "Invalid Permissions"}, []),
])
def test_missing_actions_reads_only_permission_refusals(
        answers: dict[str, str | None], expected: list[str]) -> None:
    assert missing_actions(answers) == expected


def test_permission_warnings_say_what_vipgate_cannot_do() -> None:
    [write, read] = permission_warnings(["UpdateTicket", "GetInvoices"])
    assert "lacks permission for UpdateTicket (write)" in write
    assert "set ticket priorities" in write and "API Roles" in write
    assert "lacks permission for GetInvoices (read)" in read
