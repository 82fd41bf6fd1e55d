"""Tickets that never meet the ticket gate (issue 15 item 4), through the engine against the
sandbox WHMCS: a blocked client's e-mailed ticket is moved to billing and answered with the
block message ([tickets] ungated_tickets), once; staff-opened tickets and tickets the gate let
through are left alone. On SQLite and on MariaDB."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.engine.names import refresh_names
from bridge.i18n import Texts
from bridge.signing import signed_headers
from tests.helpers import SECRET
from tests.test_engine import actions, vip_client
from tests.world import World, make_world


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    with make_world(database_url, tmp_path) as w:
        yield w


def suspended_client(w: World, name: str = "Ana") -> tuple[int, int, str]:
    """A client the gate blocks (suspended by the cron), its invoice and its e-mail."""
    client, _, invoice = vip_client(w, name, due="2026-10-26")
    w.sandbox.run_cron()
    w.drain()
    assert w.store.get_standing(client).standing == "suspended"  # type: ignore[union-attr]
    row = w.sandbox.client(client)
    assert row is not None
    return client, invoice, str(row["email"])


def replies(w: World, ticket_id: int) -> list[dict[str, Any]]:
    got = w.api().call("GetTicket", {"ticketid": ticket_id})["replies"]["reply"]
    return [r for r in got if r["admin"] and r["replyid"] != "0"]  # not the opening


def department(w: World, ticket_id: int) -> int:
    row = w.sandbox.ticket(ticket_id)
    assert row is not None
    return int(row["did"])


def moves(w: World) -> list[dict[str, object]]:
    return [a for a in actions(w, "UpdateTicket") if "deptid" in a["params"]]  # type: ignore[operator]


def test_an_emailed_ticket_of_a_suspended_client_is_moved_to_billing_and_answered(
        world: World) -> None:
    w = world
    ana, invoice, email = suspended_client(w)
    w.sandbox.update_client(ana, language="portuguese-br")
    ticket = w.sandbox.pipe_ticket(email, w.support, "Site fora do ar", "Socorro").ticket_id
    assert ticket
    w.drain()
    assert department(w, ticket) == w.billing
    [reply] = replies(w, ticket)
    assert f"(#{invoice}; total $89,90 USD)" in reply["message"]
    assert f"/viewinvoice.php?id={invoice}" in reply["message"]
    assert "Sua conta tem faturas vencidas" in reply["message"]  # the client's language
    entries = [e for e in w.store.audit_log(client_id=ana)
               if e.ticket_id == ticket and e.action.startswith("ticket_")]
    log = [(e.action, e.before, e.after) for e in entries]
    assert ("ticket_department", str(w.support), str(w.billing)) in log
    assert any(a == "ticket_reply" for a, _, _ in log)
    # Why, as the audit log shows it: English text, Portuguese with the departments' names
    # once the worker has read them from WHMCS.
    [why] = [e.reasons for e in entries if e.action == "ticket_department"]
    assert why[1:] == (f"moved to billing department {w.billing}",
                       "answered with the block message")
    assert why[0].startswith(f"opened in department {w.support} without passing the gate")
    assert refresh_names(w.store, w.api(), datetime.now(UTC))
    names = w.store.whmcs_names()
    assert [Texts("pt_BR").reason(r, names) for r in why] == [
        f"aberto no departamento Suporte (#{w.support}) sem passar pela verificação de "
        "abertura, que o teria recusado (situação suspensa, 7 dias de atraso, o departamento "
        f"Suporte (#{w.support}) não é financeiro)",
        f"movido para o departamento financeiro Financeiro (#{w.billing})",
        "respondido com a mensagem de bloqueio"]


def test_delivered_twice_the_ticket_is_moved_once_and_answered_once(world: World) -> None:
    w = world
    _, _, email = suspended_client(w)
    ticket = w.sandbox.pipe_ticket(email, w.support, "Site fora do ar", "Socorro").ticket_id
    w.drain()
    [opened] = [r for r in w.store.events() if r.hook == "TicketOpen"]
    body = json.dumps({"hook": "TicketOpen", "vars": opened.vars,
                       "occurred_at": "2026-11-02T09:00:00+00:00"}).encode()
    headers = signed_headers([SECRET], "msg_again", int(time.time()), body)
    again = requests.post(f"{w.bridge_url}/hooks/whmcs", data=body, timeout=5,
                          headers={**headers, "Content-Type": "application/json"})
    assert again.json()["status"] == "queued"  # a new delivery, not a known id
    w.drain()
    assert department(w, ticket) == w.billing  # type: ignore[arg-type]
    assert len(moves(w)) == 1 and len(actions(w, "AddTicketReply")) == 1


def test_an_interrupted_run_that_moved_the_ticket_still_answers_it(world: World) -> None:
    w = world
    ana, _, email = suspended_client(w)
    with w.sandbox.quiet():  # opened without the event, then moved (vipgate died after)
        ticket = w.sandbox.pipe_ticket(email, w.support, "Oi", "Oi").ticket_id
        assert ticket
        w.sandbox.update_ticket(ticket, deptid=w.billing)
    assert w.worker.acquire(ana)
    try:
        w.engine.reconcile_client(ana, opened=[(ticket, w.support)])
    finally:
        w.worker.release(ana)
    assert len(replies(w, ticket)) == 1
    assert moves(w) == []  # already in billing: not moved again


@pytest.mark.parametrize(("mode", "moved", "answered"), [
    ("move_and_reply", True, True), ("reply", False, True), ("keep", False, False)])
def test_ungated_tickets_setting(database_url: str, tmp_path: Path, mode: str, moved: bool,
                                 answered: bool) -> None:
    with make_world(database_url, tmp_path, tickets={"ungated_tickets": mode}) as w:
        _, _, email = suspended_client(w)
        ticket = w.sandbox.pipe_ticket(email, w.support, "Ajuda", "Socorro").ticket_id
        assert ticket
        w.drain()
        assert department(w, ticket) == (w.billing if moved else w.support)
        assert len(replies(w, ticket)) == (1 if answered else 0)


def test_an_emailed_ticket_of_a_client_in_good_standing_is_left_alone(world: World) -> None:
    w = world
    carla, _, _ = vip_client(w, "Carla", due="2026-11-20", paid=True)
    row = w.sandbox.client(carla)
    assert row is not None
    w.sandbox.update_client(carla, firstname="Carla")
    w.drain()
    ticket = w.sandbox.pipe_ticket(str(row["email"]), w.support, "Ajuda", "Oi").ticket_id
    assert ticket
    w.drain()
    assert department(w, ticket) == w.support and replies(w, ticket) == []


def test_a_ticket_staff_open_for_a_blocked_client_is_left_alone(world: World) -> None:
    w = world
    ana, _, _ = suspended_client(w)
    opened = w.sandbox.open_ticket(ana, w.support, "Ligação", "Medium", "Como combinado",
                                   admin=True)
    assert opened.ticket_id
    w.drain()
    assert "TicketOpenAdmin" in [r.hook for r in w.store.events()]
    assert department(w, opened.ticket_id) == w.support
    assert replies(w, opened.ticket_id) == [] and moves(w) == []


def test_a_ticket_opened_before_the_client_was_blocked_is_left_alone(
        database_url: str, tmp_path: Path) -> None:
    """The gate let it through (the client was current); vipgate learnt of the block before
    it handled the ticket's event: not moved."""
    with make_world(database_url, tmp_path, tickets={"block_when": "overdue"}) as w:
        bia, _, _ = vip_client(w, "Bia", due="2026-11-02")  # due today: not yet overdue
        w.sandbox.update_client(bia, firstname="Bia")
        w.drain()
        assert w.store.get_standing(bia).standing == "current"  # type: ignore[union-attr]
        opened = w.sandbox.open_ticket(bia, w.support, "Ajuda", "Medium")  # passes the gate
        assert opened.ticket_id
        w.sandbox.advance(days=6)
        assert w.worker.acquire(bia)  # another event of Bia's is handled first
        try:
            w.engine.reconcile_client(bia)
        finally:
            w.worker.release(bia)
        assert w.store.get_standing(bia).standing == "overdue"  # type: ignore[union-attr]
        w.drain()
        assert department(w, opened.ticket_id) == w.support
        assert replies(w, opened.ticket_id) == []


@pytest.mark.php
def test_through_the_real_php_stub_an_emailed_ticket_is_moved_and_a_staff_one_is_not(
        database_url: str, tmp_path: Path) -> None:
    with make_world(database_url, tmp_path, php=True) as w:
        ana, invoice, email = suspended_client(w)
        emailed = w.sandbox.pipe_ticket(email, w.support, "Socorro", "Site fora").ticket_id
        by_staff = w.sandbox.open_ticket(ana, w.support, "Ligação", "Medium", "Combinado",
                                         admin=True).ticket_id
        assert emailed and by_staff
        w.drain()
        assert "TicketOpenAdmin" in [r.hook for r in w.store.events()]
        assert department(w, emailed) == w.billing
        [reply] = replies(w, emailed)
        assert f"#{invoice}" in reply["message"]
        assert department(w, by_staff) == w.support and replies(w, by_staff) == []
