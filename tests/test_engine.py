"""The engine end to end, one step at a time: sandbox WHMCS (HTTP) → stub emulation → bridge
(HTTP) → inbox → worker → reconcile through the WHMCS API. On SQLite and on MariaDB."""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from bridge.model import TicketMemory
from bridge.signing import signed_headers
from bridge.store import inbox as queue
from bridge.store.tables import managed_ticket, membership
from bridge.whmcs import WhmcsClient
from bridge.worker import LEASE, Worker
from tests.helpers import SECRET
from tests.world import World, make_world, wall


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    with make_world(database_url, tmp_path) as w:
        yield w


def vip_client(w: World, name: str, due: str = "2026-10-28", amount: str = "89.90",
               *, paid: bool = False) -> tuple[int, int, int]:
    """A VIP client with one monthly service and its invoice due on ``due``."""
    with w.sandbox.quiet():
        client = w.sandbox.add_client(name, "Silva", groupid=w.vip, datecreated="2020-01-15")
        service = w.sandbox.add_service(client, due, "Monthly", amount)
        invoice = w.sandbox.add_invoice(client, due, [("Hosting", service, "Plano", amount)],
                                        status="Paid" if paid else "Unpaid",
                                        datepaid=f"{due} 10:00:00" if paid else None)
    return client, service, invoice


def actions(w: World, name: str) -> list[dict[str, object]]:
    return [entry for entry in w.sandbox.api_log if entry["action"] == name]


def test_overdue_vip_leaves_for_its_home_group_and_comes_back_on_payment(world: World) -> None:
    w = world
    ana, _, invoice = vip_client(w, "Ana")  # due 28 Oct, today 2 Nov: 5 days > grace 3
    w.sandbox.update_client(ana, firstname="Ana Maria")  # ClientEdit: a hint to look at Ana
    w.drain()
    assert w.group(ana) == w.regular  # no home group known: default_group_id
    cached = w.store.get_standing(ana)
    assert cached is not None and cached.standing == "overdue"
    assert [i.invoice_id for i in cached.invoices] == [invoice]
    memory = w.store.get_memory(ana)
    assert memory.pinned  # adopted: in VIP the first time vipgate saw it
    log = w.store.audit_log(client_id=ana)
    assert [(e.action, e.before, e.after) for e in log] == [
        ("membership", "unknown", "pinned"), ("group", str(w.vip), str(w.regular))]
    assert any("overdue 5 days > grace 3" in r for r in log[1].reasons)

    w.sandbox.add_payment(invoice)  # AddInvoicePayment + InvoicePaid
    w.drain()
    assert w.group(ana) == w.vip
    assert w.store.get_standing(ana).standing == "current"  # type: ignore[union-attr]
    # vipgate's own UpdateClient calls came back as ClientEdit: not taken for staff changes
    assert not w.store.get_memory(ana).excluded
    assert [e.action for e in w.store.audit_log(client_id=ana)].count("membership") == 1


def test_partial_payment_keeps_the_client_out_until_the_balance_is_zero(world: World) -> None:
    w = world
    bruno, _, invoice = vip_client(w, "Bruno", amount="100.00")
    w.sandbox.update_client(bruno, firstname="Bruno")
    w.drain()
    assert w.group(bruno) == w.regular
    w.sandbox.add_payment(invoice, "60.00")
    w.drain()
    assert w.group(bruno) == w.regular
    assert w.store.get_standing(bruno).overdue_total == 40  # type: ignore[union-attr]
    w.sandbox.add_payment(invoice, "40.00")
    w.drain()
    assert w.group(bruno) == w.vip


def test_reconcile_twice_changes_nothing_the_second_time(world: World) -> None:
    w = world
    ana, _, _ = vip_client(w, "Ana")
    lease = w.worker.acquire(ana)
    assert lease
    first = w.engine.reconcile_client(ana)
    second = w.engine.reconcile_client(ana)
    w.worker.release(ana)
    assert [c.kind for c in first.applied] == ["group"]
    assert second.applied == []


def test_staff_moving_a_client_out_of_vip_is_followed_not_fought(world: World) -> None:
    w = world
    carla, _, _ = vip_client(w, "Carla", due="2026-11-20", paid=True)
    w.sandbox.update_client(carla, firstname="Carla")
    w.drain()
    assert w.group(carla) == w.vip and w.store.get_memory(carla).pinned
    w.sandbox.update_client(carla, groupid=w.regular)  # staff, in the admin area
    w.drain()
    assert w.group(carla) == w.regular  # not put back
    memory = w.store.get_memory(carla)
    assert memory.excluded and not memory.pinned
    staff = [e for e in w.store.audit_log(client_id=carla) if e.actor == "staff"]
    assert len(staff) == 1 and "unpinned and excluded" in staff[0].reasons[0]
    # and moved back by staff: pinned again, stays
    w.sandbox.update_client(carla, groupid=w.vip)
    w.drain()
    assert w.group(carla) == w.vip
    memory = w.store.get_memory(carla)
    assert memory.pinned and not memory.excluded and memory.home_group_id == w.regular


@pytest.mark.parametrize("php", [False, pytest.param(True, marks=pytest.mark.php)])
def test_staff_putting_an_owing_client_into_vip_is_respected_until_it_pays(
        database_url: str, tmp_path: Path, php: bool) -> None:
    """A staff hold, with who (the stub reads WHMCS's CurrentUser) and when: not taken back
    out while it owes; paid up, the normal rules apply."""
    with make_world(database_url, tmp_path, php=php) as w:
        _staff_hold_story(w)


def _staff_hold_story(w: World) -> None:
    bruno, _, invoice = vip_client(w, "Bruno")  # owes since 2026-10-28: leaves VIP
    w.sandbox.update_client(bruno, firstname="Bruno")
    w.drain()
    assert w.group(bruno) == w.regular
    with w.sandbox.as_admin("alice"):  # staff, in the admin area, while he owes
        w.sandbox.update_client(bruno, groupid=w.vip)
    w.drain()
    assert w.group(bruno) == w.vip  # not fought
    memory = w.store.get_memory(bruno)
    assert memory.pinned and memory.held_since is not None and memory.held_by == "alice"
    cached = w.store.get_standing(bruno)
    assert cached is not None and cached.in_vip
    assert any(r.startswith("staff hold since") and " by alice: " in r
               for r in cached.vip_reasons)
    staff = [e for e in w.store.audit_log(client_id=bruno) if e.actor == "staff"]
    assert staff and "(by alice)" in staff[-1].reasons[0]
    w.sandbox.add_payment(invoice)
    w.drain()
    assert w.group(bruno) == w.vip and w.store.get_memory(bruno).held_since is None
    ended = [e for e in w.store.audit_log(client_id=bruno) if e.actor == "vipgate"
             and e.action == "membership"]
    assert any("the staff hold since" in e.reasons[0] for e in ended)


def test_ticket_priority_lowered_with_a_note_and_restored_on_payment(world: World) -> None:
    w = world
    ana, _, invoice = vip_client(w, "Ana")
    ticket = w.sandbox.open_ticket(ana, w.support, "Site lento", "Medium").ticket_id
    w.drain()
    assert w.priority(ticket) == "Low"
    notes = w.api().get_ticket(ticket).notes
    assert len(notes) == 1 and f"#{invoice}" in notes[0].message
    # a reply re-checks the client: no second note, no change
    w.sandbox.client_reply(ticket, "E aí?")
    w.drain()
    assert len(w.api().get_ticket(ticket).notes) == 1
    w.sandbox.add_payment(invoice)
    w.drain()
    assert w.group(ana) == w.vip
    # VIP and current: the matrix says High (priority_vip); the original is forgotten then
    assert w.priority(ticket) == "High"


def test_original_priority_comes_back_when_the_matrix_says_keep(database_url: str,
                                                                tmp_path: Path) -> None:
    with make_world(database_url, tmp_path, tickets={"priority_vip": "keep"}) as w:
        ana, _, invoice = vip_client(w, "Ana")
        ticket = w.sandbox.open_ticket(ana, w.support, "Site lento", "Medium").ticket_id
        w.drain()
        assert w.priority(ticket) == "Low"
        w.sandbox.add_payment(invoice)
        w.drain()
        assert w.priority(ticket) == "Medium"
        assert w.store.ticket_memories(ana) == {}


def test_a_ticket_reprioritised_by_staff_is_left_alone(world: World) -> None:
    w = world
    ana, _, invoice = vip_client(w, "Ana")
    ticket = w.sandbox.open_ticket(ana, w.support, "Urgente", "Medium").ticket_id
    w.drain()
    assert w.priority(ticket) == "Low"
    w.sandbox.update_ticket(ticket, priority="High")  # staff: TicketPriorityChange
    w.drain()
    assert w.priority(ticket) == "High"
    w.sandbox.client_reply(ticket, "obrigado")
    w.drain()
    assert w.priority(ticket) == "High"
    staff_changes = [e for e in actions(w, "UpdateTicket")]
    assert len(staff_changes) == 1  # only vipgate's lowering went through the API
    w.sandbox.add_payment(invoice)
    w.drain()
    assert w.priority(ticket) == "High"


def test_precronjob_removes_vip_before_the_cron_suspends(world: World) -> None:
    w = world
    ana, service, _ = vip_client(w, "Ana", due="2026-10-26")  # 7 days > AutoSuspensionDays 5
    carla, carla_service, _ = vip_client(w, "Carla", due="2026-11-20", paid=True)
    summary = w.sandbox.run_cron()  # PreCronJob answered after a synchronous reconcile
    assert w.group(ana) == w.regular
    assert service in summary.suspended
    assert carla_service not in summary.suspended and w.group(carla) == w.vip
    precron = [r for r in w.store.events() if r.hook == "PreCronJob"]
    assert precron and precron[0].state == "done"
    w.drain()  # the suspension's AfterModuleSuspend: Ana is now suspended
    assert w.store.get_standing(ana).standing == "suspended"  # type: ignore[union-attr]


def test_suspended_client_blocked_outside_billing_with_the_invoices(world: World) -> None:
    w = world
    ana, _, invoice = vip_client(w, "Ana", due="2026-10-26")
    w.sandbox.run_cron()
    w.drain()
    blocked = w.sandbox.open_ticket(ana, w.support, "Site fora do ar", "High")
    assert blocked.ticket_id is None or blocked.ticket_id == 0
    assert f"#{invoice}" in (blocked.error or "")
    allowed = w.sandbox.open_ticket(ana, w.billing, "Boleto", "Medium")
    assert allowed.ticket_id


def test_whmcs_errors_are_retried_then_dead_lettered_and_retryable(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """WHMCS answers (its GetClientGroups probe works) but fails this event's reads: the
    failure is the event's own, counted and retried on the schedule, then dead."""
    w = world
    # the client's quick retries wait nothing here (their schedule is tested with the client)
    monkeypatch.setattr(w.engine, "make_whmcs",
                        lambda: WhmcsClient(w.settings.whmcs, sleep=lambda _seconds: None))
    ana, _, _ = vip_client(w, "Ana")
    w.sandbox.update_client(ana, firstname="Ana")
    w.sandbox.faults.push("http_error", times=1000, action="GetClientsDetails")
    [outcome] = w.drain()
    assert outcome.state == "retrying" and "WhmcsUnavailable" in (outcome.error or "")
    row = w.store.events()[-1]
    assert row.state == "retrying" and row.attempts == 1
    later = wall()
    for attempt in range(2, queue.MAX_ATTEMPTS + 1):
        later += timedelta(days=2)
        w.worker.clock = lambda at=later: at  # type: ignore[misc]
        [outcome] = w.worker.run_once()
        assert outcome.state == ("dead" if attempt == queue.MAX_ATTEMPTS else "retrying")
    assert [r.webhook_id for r in queue.dead_letters(w.store)] == [row.webhook_id]
    assert w.group(ana) == w.vip  # nothing applied
    w.sandbox.faults.clear()
    assert queue.requeue_dead(w.store, row.id, later)
    w.drain()
    assert w.group(ana) == w.regular


@pytest.mark.parametrize("hook", ["InvoiceCancelled", "InvoicePaid", "AddInvoicePayment"])
def test_an_event_about_a_deleted_or_merged_invoice_ends_done(world: World, hook: str) -> None:
    """WHMCS 8 answers GetInvoice for an invoice that no longer exists with
    ``{"status": "error", ...}`` and no ``result`` (whmcs-reference §6): not found, so the
    event has no client left to look at, and is done rather than retried into the dead
    letters."""
    import sqlalchemy as sa

    from bridge.whmcs.schema import tblinvoiceitems, tblinvoices

    w = world
    _, _, invoice = vip_client(w, "Ana", paid=True)
    with w.sandbox.transaction() as conn:  # merged into another, or deleted by staff
        conn.execute(sa.delete(tblinvoiceitems).where(tblinvoiceitems.c.invoiceid == invoice))
        conn.execute(sa.delete(tblinvoices).where(tblinvoices.c.id == invoice))
    w.forwarder.fire(hook, {"invoiceid": invoice})
    [outcome] = w.drain()
    assert (outcome.state, outcome.error, outcome.clients) == ("done", None, 0)
    assert w.store.events()[-1].state == "done" and queue.dead_letters(w.store) == []
    assert actions(w, "GetInvoice")[-1]["result"] == "error"


def test_whmcs_down_defers_events_without_attempts_and_the_backlog_follows_it_back(
        world: World) -> None:
    w = world
    ana, _, _ = vip_client(w, "Ana")
    bia, _, _ = vip_client(w, "Bia")
    w.sandbox.update_client(ana, firstname="Ana")
    w.sandbox.update_client(bia, firstname="Bia")
    w.sandbox.faults.push("http_error", times=1000)  # every call, the probe's too
    now = wall()
    w.worker.clock = lambda: now  # type: ignore[method-assign]
    [outcome] = w.drain()  # the first event fails, the probe fails: paused, the rest given back
    assert outcome.state == "deferred" and (outcome.error or "").startswith("WHMCS unavailable")
    assert w.worker.paused is not None
    rows = w.store.events()
    assert [(r.state, r.attempts) for r in rows] == [("queued", 0), ("queued", 0)]
    assert (rows[0].last_error or "").startswith("WHMCS unavailable: WHMCS GetClientsDetails")
    assert w.drain() == []  # paused: nothing claimed
    w.sandbox.faults.clear()
    w.worker.clock = lambda: now + timedelta(seconds=1)  # type: ignore[method-assign]
    outcomes = w.drain()  # the probe succeeds: the backlog is applied at once
    assert w.worker.paused is None
    assert {o.state for o in outcomes} == {"done"}
    assert (w.group(ana), w.group(bia)) == (w.regular, w.regular)
    assert {r.attempts for r in w.store.events()[:2]} == {1}


def test_result_error_is_retried_with_whmcs_message(world: World) -> None:
    w = world
    ana, _, _ = vip_client(w, "Ana")
    w.sandbox.update_client(ana, firstname="Ana")
    w.sandbox.faults.push("html", action="UpdateClient")
    [outcome] = w.drain()
    assert outcome.state == "retrying"
    assert w.group(ana) == w.vip
    w.worker.clock = lambda: wall() + timedelta(minutes=1)  # type: ignore[method-assign]
    w.drain()
    assert w.group(ana) == w.regular


def test_a_worker_killed_mid_event_is_reclaimed_and_the_change_applied_once(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    ana, _, _ = vip_client(w, "Ana")
    w.sandbox.update_client(ana, firstname="Ana")

    class Killed(BaseException):
        pass

    real_record = w.store.record  # the engine's audit rows (with the episode's actions)

    def die_after_the_write(client_id, entries, step, now):  # type: ignore[no-untyped-def]
        if any(e.action == "group" for e in entries):
            raise Killed  # the process dies between WHMCS's answer and vipgate's bookkeeping
        real_record(client_id, entries, step, now)

    monkeypatch.setattr(w.store, "record", die_after_the_write)
    with pytest.raises(Killed):
        w.worker.run_once()
    monkeypatch.setattr(w.store, "record", real_record)
    assert w.group(ana) == w.regular  # WHMCS has the change; the event is still "processing"
    first, echo = w.store.events()  # the hint, and the ClientEdit of vipgate's own write
    assert first.state == "processing" and echo.state == "queued"
    # The killed worker never comes back; another one finds the first event still leased...
    survivor = Worker(w.engine, clock=wall, name="survivor")
    assert [o.row_id for o in survivor.run_once()] == [echo.id]
    # ...for one short lease only: nothing renews it any more.
    other = Worker(w.engine, clock=lambda: wall() + LEASE + timedelta(seconds=1),
                   name="other")
    outcomes = other.drain()
    assert outcomes and all(o.state == "done" for o in outcomes)
    assert len(actions(w, "UpdateClient")) == 1  # applied once
    memory = w.store.get_memory(ana)
    assert memory.pinned and not memory.excluded  # its own write, not a staff change
    assert memory.last_group_id == w.regular and memory.pending_group_id is None


@pytest.mark.parametrize("batch", [10, 1])
def test_a_payment_s_two_events_claimed_together_take_one_reconcile(world: World,
                                                                    batch: int) -> None:
    """AddInvoicePayment then InvoicePaid name one invoice. Claimed in one batch, the second is
    covered by the first's reconcile (which read WHMCS after both were stored): Ana is read
    from WHMCS once, not twice, and the payment is applied. Claimed one at a time, each is
    reconciled."""
    w = world
    ana, _, invoice = vip_client(w, "Ana")
    w.sandbox.update_client(ana, firstname="Ana Maria")
    w.drain()
    assert w.group(ana) == w.regular  # overdue: out of VIP
    w.sandbox.add_payment(invoice)  # both events stored before the claim
    w.sandbox.api_log.clear()
    worker = Worker(w.engine, clock=wall, name="round", batch=batch)
    outcomes = [o for _ in range(2 if batch == 1 else 1) for o in worker.run_once()]
    assert [(o.hook, o.state) for o in outcomes] == [("AddInvoicePayment", "done"),
                                                     ("InvoicePaid", "done")]
    assert [o.covered for o in outcomes] == ([False, True] if batch > 1 else [False, False])
    assert len(actions(w, "GetClientsDetails")) == (1 if batch > 1 else 2)
    assert w.group(ana) == w.vip


def calls(w: World) -> dict[str, int]:
    """WHMCS API calls since the sandbox's log was last cleared, by action; cleared again."""
    counted = Counter(str(entry["action"]) for entry in w.sandbox.api_log)
    w.sandbox.api_log.clear()
    return dict(counted)


def test_reads_per_event_kind(world: World) -> None:
    """Each event costs only the reads that can change its outcome (issue 17): GetClients once
    per client (for ``datecreated``, which the API cannot change), GetTickets only when
    GetClientsDetails' stats count an active ticket, GetClientsProducts only when they count a
    service that is not Active (the policy looks only at suspended ones), and an invoice
    event's owner look-up (GetInvoice) also gives the balance."""
    w = world
    ana, first, _ = vip_client(w, "Ana", paid=True)  # VIP, a service, nothing owed, no ticket
    w.sandbox.api_log.clear()
    w.sandbox.update_client(ana, firstname="Ana Maria")  # ClientEdit names the client
    assert [o.hook for o in w.drain()] == ["ClientEdit"]
    assert calls(w) == {"GetClientsDetails": 1, "GetClients": 1, "GetInvoices": 1}
    w.sandbox.update_client(ana, firstname="Ana")  # the same client again: datecreated kept
    w.drain()
    assert calls(w) == {"GetClientsDetails": 1, "GetInvoices": 1}

    with w.sandbox.quiet():
        service = w.sandbox.add_service(ana, "2026-12-02", "Monthly", "89.90")
    w.sandbox.add_invoice(ana, "2026-12-02", [("Hosting", service, "Plano", "89.90")])
    assert [o.hook for o in w.drain()] == ["InvoiceCreated"]
    # the owed invoice is read once: for its owner, and that answer gives its balance
    assert calls(w) == {"GetInvoice": 1, "GetClientsDetails": 1, "GetInvoices": 1}
    assert w.group(ana) == w.vip  # due in a month: still current

    with w.sandbox.quiet():
        w.sandbox.suspend_service(first, "Abuse")  # not every service Active: read them
    w.sandbox.update_client(ana, firstname="Ana Maria")
    w.drain()
    assert calls(w) == {"GetInvoice": 1, "GetClientsDetails": 1, "GetInvoices": 1,
                        "GetClientsProducts": 1}
    cached = w.store.get_standing(ana)
    assert cached is not None and f"service #{first} is Suspended (Abuse)" in \
        cached.standing_reasons

    ticket = w.sandbox.open_ticket(ana, w.support, "Ajuda", "Medium").ticket_id
    # TicketOpen, then vipgate's own priority change coming back: each reads the active ticket
    assert [o.hook for o in w.drain()] == ["TicketOpen", "TicketPriorityChange"]
    assert calls(w)["GetTickets"] == 2
    assert w.priority(ticket) == "High"  # VIP and current

    with w.sandbox.quiet():
        eva = w.sandbox.add_client("Eva", "Lima", groupid=w.regular, datecreated="2021-03-01")
    w.sandbox.update_client(eva, firstname="Eva Maria")  # no service, no ticket
    w.drain()
    assert calls(w) == {"GetClientsDetails": 1, "GetClients": 1, "GetInvoices": 1}
    assert w.group(eva) == w.regular


def test_an_invoice_event_names_its_client_so_no_owner_look_up_is_made(world: World) -> None:
    """The stub adds the invoice's client (``userid``, from tblinvoices, when it sends):
    a payment in full costs no GetInvoice at all (the invoice is no longer owed). An event
    without it (an older stub, an invoice the stub did not find) still looks the owner up."""
    w = world
    ana, _, invoice = vip_client(w, "Ana")
    w.sandbox.update_client(ana, firstname="Ana Maria")
    w.drain()
    assert w.group(ana) == w.regular  # overdue: out of VIP
    w.sandbox.api_log.clear()
    w.sandbox.add_payment(invoice)  # AddInvoicePayment, InvoicePaid
    # one reconcile (the second event is covered), back to VIP, and that change's echo
    assert [o.hook for o in w.drain()] == ["AddInvoicePayment", "InvoicePaid", "ClientEdit"]
    sent = [r for r in w.store.events() if r.hook in ("AddInvoicePayment", "InvoicePaid")]
    assert [(r.vars, r.client_id) for r in sent] == [
        ({"invoiceid": invoice, "userid": ana}, ana)] * 2
    assert calls(w) == {"GetClientsDetails": 2, "GetInvoices": 2, "UpdateClient": 1}
    assert w.group(ana) == w.vip

    older = queue.InboxEvent("msg_older_stub", "InvoicePaid", None, {"invoiceid": invoice},
                             wall(), wall())
    assert w.store.enqueue(older) == "queued"
    assert [o.state for o in w.drain()] == ["done"]
    assert calls(w) == {"GetInvoice": 1, "GetClientsDetails": 1, "GetInvoices": 1}


def test_a_kept_datecreated_still_decides_tenure(database_url: str, tmp_path: Path) -> None:
    """The case GetClients covered: ``datecreated`` decides tenure. Read once per client and
    kept, it gives the same decisions on the next events: the long-standing client is made
    VIP, the new one is not, without reading GetClients again."""
    with make_world(database_url, tmp_path, policy={"min_tenure_months": 12, "min_spend": 100,
                                                       "promote_by_rules": True}) as w:
        people = {}
        with w.sandbox.quiet():
            for name, since in (("Old", "2020-01-15"), ("New", "2026-08-01")):
                client = w.sandbox.add_client(name, "Souza", groupid=w.regular,
                                              datecreated=since)
                service = w.sandbox.add_service(client, "2026-11-28", "Monthly", "89.90")
                w.sandbox.add_invoice(client, "2026-10-28",
                                      [("Hosting", service, "Plano", "189.90")],
                                      status="Paid", datepaid="2026-10-27 10:00:00")
                people[name] = client
        for round_ in (1, 2):
            w.sandbox.api_log.clear()
            for name, client in people.items():
                w.sandbox.update_client(client, firstname=f"{name} {round_}")
            w.drain()
            assert w.group(people["Old"]) == w.vip, round_
            assert w.group(people["New"]) == w.regular, round_
            assert len(actions(w, "GetClients")) == (2 if round_ == 1 else 0)


def test_a_partial_payment_s_balance_comes_from_the_owner_look_up(world: World) -> None:
    """The case the second GetInvoice covered: the balance left after a partial payment keeps
    the client out of VIP; the invoice read after the payment gives it (one GetInvoice: the
    event names its client, so no owner look-up is made)."""
    w = world
    bruno, _, invoice = vip_client(w, "Bruno", amount="100.00")
    w.sandbox.update_client(bruno, firstname="Bruno")
    w.drain()
    assert w.group(bruno) == w.regular  # overdue
    w.sandbox.api_log.clear()
    w.sandbox.add_payment(invoice, "60.00")  # AddInvoicePayment only: 40.00 still owed
    assert [o.hook for o in w.drain()] == ["AddInvoicePayment"]
    assert [e["params"].get("invoiceid") for e in actions(w, "GetInvoice")] == [str(invoice)]
    assert w.group(bruno) == w.regular
    standing = w.store.get_standing(bruno)
    assert standing is not None and standing.standing == "overdue"
    w.sandbox.add_payment(invoice)  # the rest: paid, back to VIP
    w.drain()
    assert w.group(bruno) == w.vip


def test_a_reconcile_that_changes_nothing_does_not_write_the_memory_again(world: World
                                                                           ) -> None:
    """One commit less per event: the membership row is written when the plan changes it (a
    group change) and left alone when it does not; the decisions are the same."""
    w = world
    ana, _, invoice = vip_client(w, "Ana")

    def written() -> object:
        with w.store.engine.connect() as conn:
            return conn.execute(sa.select(membership.c.updated_at).where(
                membership.c.client_id == ana)).scalar_one_or_none()

    w.sandbox.update_client(ana, firstname="Ana Maria")
    w.drain()  # first seen: adopted (pinned), overdue: out of VIP
    assert w.group(ana) == w.regular and w.store.get_memory(ana).pinned
    first = written()
    assert first is not None
    w.sandbox.clock.advance(minutes=5)
    w.sandbox.update_client(ana, firstname="Ana")  # nothing to change
    w.drain()
    assert written() == first and w.group(ana) == w.regular
    w.sandbox.clock.advance(minutes=5)
    w.sandbox.add_payment(invoice)  # back to VIP: the memory changes, and is written
    w.drain()
    assert w.group(ana) == w.vip
    assert w.store.get_memory(ana).last_group_id == w.vip and written() != first


def test_a_ticket_record_the_plan_leaves_as_it_was_is_not_written_again(world: World
                                                                         ) -> None:
    """One commit less per active ticket and event: the ticket's record is read once per
    reconcile and written only when the plan changes it."""
    w = world
    ana, _, _ = vip_client(w, "Ana", paid=True)  # VIP and current
    ticket = w.sandbox.open_ticket(ana, w.support, "Ajuda", "Medium").ticket_id
    w.drain()
    assert w.priority(ticket) == "High"  # changed: the record keeps the original

    def written() -> object:
        with w.store.engine.connect() as conn:
            return conn.execute(sa.select(managed_ticket.c.updated_at).where(
                managed_ticket.c.ticket_id == ticket)).scalar_one_or_none()

    first = written()
    assert first is not None
    assert w.store.ticket_memory(ticket) == TicketMemory(ticket, ana, "Medium", "High")
    w.sandbox.clock.advance(minutes=5)
    w.sandbox.update_client(ana, firstname="Ana Maria")  # nothing to change
    w.drain()
    assert written() == first and w.priority(ticket) == "High"


def test_a_ticket_opened_in_the_same_round_is_still_reconciled(world: World) -> None:
    """A TicketOpen asks for the gate's follow-up on its own ticket: never covered by another
    event's reconcile of the same client."""
    w = world
    bia, _, invoice = vip_client(w, "Bia")
    w.sandbox.add_payment(invoice, "10.00")  # AddInvoicePayment: Bia still owes
    w.sandbox.open_ticket(bia, w.support, "Ajuda", "Medium")  # TicketOpen
    outcomes = {o.hook: o for o in Worker(w.engine, clock=wall, name="round").run_once()}
    assert outcomes["AddInvoicePayment"].covered is False
    assert outcomes["TicketOpen"].covered is False and outcomes["TicketOpen"].clients == 1


def test_duplicated_and_reordered_events_reach_the_same_state(world: World) -> None:
    """Two clients with the same story: one's events processed in order, the other's newest
    first, with a duplicate delivery of its first event on top."""
    w = world
    people: dict[str, tuple[int, int]] = {}
    for name in ("Ana", "Bia"):
        client, _, invoice = vip_client(w, name)
        ticket = w.sandbox.open_ticket(client, w.support, "Ajuda", "Medium").ticket_id
        w.sandbox.add_payment(invoice, "10.00")
        w.sandbox.update_client(client, firstname=name)
        people[name] = (client, ticket)
    *older, newest = [r.id for r in w.store.events()]  # newest: Bia's ClientEdit
    for row_id in older:  # held back, so Bia's newest event is processed first
        assert queue.claim_row(w.store, row_id, "hold", wall(), lease=timedelta(hours=1))
    assert [o.row_id for o in w.drain()][:1] == [newest]
    for row_id in older:
        queue.defer(w.store, row_id, "hold", wall(), timedelta(0))
    first = next(r for r in w.store.events() if r.client_id == people["Bia"][0])
    body = json.dumps({"hook": first.hook, "vars": first.vars,
                       "occurred_at": "2026-11-02T09:00:00+00:00"}).encode()
    headers = signed_headers([SECRET], first.webhook_id, int(time.time()), body)
    again = requests.post(f"{w.bridge_url}/hooks/whmcs", data=body, timeout=5,
                          headers={**headers, "Content-Type": "application/json"})
    assert again.json()["status"] == "duplicate"
    w.drain()
    finals = [(w.group(client), w.priority(ticket),
               w.store.get_standing(client).standing)  # type: ignore[union-attr]
              for client, ticket in people.values()]
    assert finals[0] == finals[1] == (w.regular, "Low", "overdue")


def post_precron(w: World, msg_id: str) -> dict[str, Any]:
    """WHMCS's cron fires PreCronJob: the bridge's answer (202), once it has reconciled."""
    body = json.dumps({"hook": "PreCronJob", "vars": {},
                       "occurred_at": "2026-11-02T09:00:00+00:00"}).encode()
    headers = signed_headers([SECRET], msg_id, int(time.time()), body)
    answer = requests.post(f"{w.bridge_url}/hooks/whmcs", data=body, timeout=30,
                           headers={**headers, "Content-Type": "application/json"})
    assert answer.status_code == 202
    return answer.json()


def test_precronjob_is_answered_after_reconciling_everyone(world: World) -> None:
    w = world
    ana, _, _ = vip_client(w, "Ana")
    vip_client(w, "Carla", due="2026-11-20", paid=True)
    answer = post_precron(w, "msg_precron_1")
    assert answer["reconciled"] == {"state": "done", "clients": 2, "changes": 1}
    assert w.group(ana) == w.regular


def test_precronjob_with_whmcs_down_goes_back_to_the_worker_at_once(world: World) -> None:
    w = world
    ana, _, _ = vip_client(w, "Ana")
    w.sandbox.faults.push("http_error", times=1000)
    answer = post_precron(w, "msg_precron_down")
    assert answer["reconciled"]["state"] == "deferred"
    row = w.store.get_event("msg_precron_down")
    assert row is not None and (row.state, row.attempts) == ("queued", 0)
    assert (row.last_error or "").startswith("WHMCS unavailable: ")
    assert len(actions(w, "GetClientGroups")) == 0  # the request did not probe, nor wait
    w.sandbox.faults.clear()
    w.drain()
    assert w.store.get_event("msg_precron_down").state == "done"  # type: ignore[union-attr]
    assert w.group(ana) == w.regular


def test_a_full_reconcile_cut_by_its_deadline_goes_back_to_the_worker(world: World) -> None:
    w = world
    ana, _, _ = vip_client(w, "Ana")
    w.forwarder.fire("DailyCronJob", {})
    [row] = queue.claim(w.store, "precron", wall(), lease=timedelta(minutes=5))
    late = time.monotonic() - 1
    cut = Worker(w.engine, clock=wall, name="precron").process(row, deadline=late)
    assert cut.state == "deferred" and cut.clients == 0
    assert w.group(ana) == w.vip
    outcome, *echoes = w.drain()  # then the ClientEdit of vipgate's own write
    assert (outcome.row_id, outcome.state) == (row.id, "done") and w.group(ana) == w.regular
    assert [e.hook for e in echoes] == ["ClientEdit"]


def test_vipgate_worker_once_drains_the_inbox(world: World, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    w = world
    ana, _, _ = vip_client(w, "Ana")
    w.sandbox.update_client(ana, firstname="Ana")
    url = w.settings.bridge.database_url
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VIPGATE_")},
           "VIPGATE_BRIDGE_DATABASE_URL": url, "VIPGATE_WEBHOOK_SECRETS": SECRET,
           "VIPGATE_WHMCS_URL": w.settings.whmcs.url,
           "VIPGATE_WHMCS_IDENTIFIER": w.settings.whmcs.identifier,
           "VIPGATE_WHMCS_SECRET": w.settings.whmcs.secret,
           "VIPGATE_POLICY_VIP_GROUP_ID": str(w.vip),
           "VIPGATE_POLICY_DEFAULT_GROUP_ID": str(w.regular),
           "VIPGATE_POLICY_MIN_TENURE_MONTHS": "0"}
    done = subprocess.run([sys.executable, "-m", "bridge", "worker", "--once"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"vipgate: \d+ events? processed, 0 failed", done.stdout), done.stdout
    assert w.group(ana) == w.regular


def test_seed_story_through_the_real_php_stub(database_url: str, tmp_path: Path) -> None:
    """The acceptance story in short, hooks forwarded by whmcs_php_stub/vipgate.php run by php:
    removal before the cron's suspension, the gate, partial and full payment, restoration,
    staff overrides respected."""
    with make_world(database_url, tmp_path, php=True,
                    tickets={"priority_vip": "keep"}) as w:
        ana, _, _ = vip_client(w, "Ana", due="2026-11-20", paid=True)
        bruno, bruno_service, bruno_invoice = vip_client(w, "Bruno", due="2026-10-26")
        carla, _, carla_invoice = vip_client(w, "Carla", due="2026-10-26", amount="300.00")
        ticket = w.sandbox.open_ticket(bruno, w.billing, "Segunda via", "Medium").ticket_id
        summary = w.sandbox.run_cron()
        w.drain()
        assert (w.group(ana), w.group(bruno), w.group(carla)) == (w.vip, w.regular, w.regular)
        assert bruno_service in summary.suspended
        assert w.priority(ticket) == "Low"
        blocked = w.sandbox.open_ticket(bruno, w.support, "Site fora do ar", "High")
        assert not blocked.ticket_id and f"#{bruno_invoice}" in (blocked.error or "")
        w.sandbox.update_ticket(ticket, priority="High")  # staff override
        w.drain()
        w.sandbox.add_payment(carla_invoice, "100.00")
        w.sandbox.add_payment(bruno_invoice)
        w.drain()
        assert w.group(bruno) == w.vip and w.priority(ticket) == "High"
        assert w.sandbox.service(bruno_service)["domainstatus"] == "Active"  # type: ignore[index]
        assert w.group(carla) == w.regular  # R$ 200.00 still owed
        w.sandbox.add_payment(carla_invoice)
        w.drain()
        assert w.group(carla) == w.vip
        assert w.forwarder.kind == "php" and w.forwarder.spooled() == []


def test_a_promise_to_pay_counts_as_current_for_tickets_but_not_for_vip(world: World) -> None:
    w = world
    ana, _, _ = vip_client(w, "Ana")
    w.store.set_promise(ana, date(2026, 11, 6), "paga na sexta", "staff", wall())
    ticket = w.sandbox.open_ticket(ana, w.support, "Ajuda", "Medium").ticket_id
    w.drain()
    assert w.group(ana) == w.regular  # VIP only by payment (promise_restores_vip off)
    assert w.priority(ticket) == "Medium"  # tickets: current while the promise holds
    assert w.api().get_ticket(ticket).notes == ()
    assert w.store.get_standing(ana).standing == "current"  # type: ignore[union-attr]
    w.sandbox.advance(days=5)  # the promise expired on the 6th
    w.sandbox.client_reply(ticket, "e aí?")
    w.drain()
    assert w.priority(ticket) == "Low"


def test_promise_restores_vip_when_the_setting_says_so(database_url: str,
                                                        tmp_path: Path) -> None:
    with make_world(database_url, tmp_path, policy={"promise_restores_vip": True}) as w:
        ana, _, _ = vip_client(w, "Ana")
        w.store.set_promise(ana, date(2026, 11, 6), "", "staff", wall())
        w.sandbox.update_client(ana, firstname="Ana")
        w.drain()
        assert w.group(ana) == w.vip
        w.store.clear_promise(ana)
        w.sandbox.update_client(ana, firstname="Ana Maria")
        w.drain()
        assert w.group(ana) == w.regular


@pytest.mark.parametrize(("collections_owed", "back_in_vip"), [(True, False), (False, True)])
def test_an_invoice_moved_to_collections_is_still_owed(database_url: str, tmp_path: Path,
                                                       collections_owed: bool,
                                                       back_in_vip: bool) -> None:
    """WHMCS: Collections is unpaid debt, and UpdateInvoice to Collections fires no hook; the
    next look at the client (here a ClientEdit) must still find it owed from its due date,
    not current and back in the group exempt from suspension."""
    with make_world(database_url, tmp_path,
                    policy={"collections_owed": collections_owed}) as w:
        ana, _, invoice = vip_client(w, "Ana", due="2026-10-01")
        w.sandbox.add_payment(invoice, "9.90")  # AddInvoicePayment: vipgate looks at Ana
        w.drain()
        assert w.group(ana) == w.regular
        fired = len(w.sandbox.fired)
        w.sandbox.update_invoice(invoice, status="Collections")
        assert w.sandbox.fired[fired:] == [] and w.drain() == []  # no hook, nothing to do
        w.sandbox.update_client(ana, firstname="Ana Maria")
        w.drain()
        cached = w.store.get_standing(ana)
        assert cached is not None
        if back_in_vip:
            assert (w.group(ana), cached.standing) == (w.vip, "current")
            return
        assert (w.group(ana), cached.standing) == (w.regular, "overdue")
        assert ([i.invoice_id for i in cached.invoices], cached.overdue_total) == (
            [invoice], Decimal("80.00"))
        plan = w.engine.plan(ana)
        assert plan is not None and plan.changes == ()
        assert any("in Collections overdue 32 days > grace 3" in r
                   for r in plan.standing.reasons)
        w.sandbox.add_payment(invoice)  # a Collections invoice paid in full turns Paid
        w.drain()
        assert (w.group(ana), w.store.get_standing(ana).standing) == (  # type: ignore[union-attr]
            w.vip, "current")


@pytest.mark.parametrize("php", [False, pytest.param(True, marks=pytest.mark.php)])
def test_staff_and_the_client_see_vipgate_inside_whmcs(database_url: str, tmp_path: Path,
                                                       php: bool) -> None:
    """Issue 6's "done when", in the sandbox: after the cron suspends Bruno, staff see his
    standing on the client summary and the ticket page, and he is offered only billing with
    the reason, in his language (Portuguese) or the page's (English)."""
    from bridge.sandbox.pages import (
        hook_output,
        render_client_summary,
        render_ticket_view,
        submit_ticket_vars,
    )

    def text(markup: str) -> str:
        return " ".join(re.sub(r"<[^>]+>", " ", html.unescape(markup)).split())

    hostile = '<script>alert("x")</script>'
    with make_world(database_url, tmp_path, php=php) as w:
        bruno, _, invoice = vip_client(w, hostile, due="2026-10-26")  # a hostile name
        w.sandbox.update_client(bruno, language="portuguese-br", companyname=hostile)
        ticket = w.sandbox.open_ticket(bruno, w.support, hostile, "Medium").ticket_id
        w.sandbox.run_cron()
        w.drain()
        summary = text(hook_output(render_client_summary(w.sandbox, bruno)))
        assert "Standing: Suspended · 7 days" in summary  # staff: [bridge] language = en
        assert f"#{invoice}" in summary
        assert "Why this standing:" in summary and "grace 3" in summary
        assert f"VIP group: #{w.vip} → #{w.regular} (vipgate)" in summary  # names not read yet
        from bridge.engine.names import refresh_names

        assert refresh_names(w.store, w.api(), datetime.now(UTC))  # as the worker does hourly
        names = {g.id: g.name for g in w.api().get_client_groups()}
        summary = text(hook_output(render_client_summary(w.sandbox, bruno)))
        assert (f"VIP group: {names[w.vip]} (#{w.vip}) → {names[w.regular]} (#{w.regular}) "
                "(vipgate)") in summary
        badge = text(hook_output(render_ticket_view(w.sandbox, ticket)))
        assert badge.startswith("vipgate · Suspended · 7 days")
        assert "priority lowered by vipgate (was Medium)" in badge
        offered = submit_ticket_vars(w.sandbox, bruno)
        assert [d["id"] for d in offered["departments"]] == [w.billing]
        assert "só o departamento financeiro" in text(offered["vipgate_notice"])
        assert f"#{invoice}" in text(offered["vipgate_notice"])
        for page in (render_client_summary(w.sandbox, bruno), render_ticket_view(w.sandbox, ticket),
                     str(offered["vipgate_notice"])):
            assert "<script" not in page
        assert w.forwarder.spooled() == []  # delivered, by the stub or its emulation
