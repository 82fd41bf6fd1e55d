"""Delinquency episodes: the pure rules (``bridge.policy.episodes``), the engine recording them
live through the sandbox WHMCS, the resync, and the backfill from WHMCS's history. On SQLite
and on MariaDB."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.cli.backfill import backfilled, run_backfill_command
from bridge.cli.common import Failure
from bridge.cli.resync import run_resync
from bridge.policy import episodes as ep
from bridge.policy.episodes import OpenEpisode, Payment
from bridge.policy.past_episodes import (
    ClientHistory,
    PastInvoice,
    PastPayment,
    late_from,
    reconstruct,
)
from bridge.policy.standing import standing
from bridge.policy.state import ClientState, Invoice
from bridge.resync.backfill import run_backfill
from bridge.resync.history import HistoryApiReader, HistoryDbReader
from bridge.resync.runner import Resync
from bridge.resync.source_db import WhmcsDbReader
from bridge.settings import default_settings
from bridge.store import Store
from tests.world import World, make_world

POLICY = default_settings().replace(policy={"grace_days": 3}).policy
NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
TODAY = date(2026, 11, 2)


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    with make_world(database_url, tmp_path) as w:
        yield w


def _client(*invoices: Invoice, status: str = "Active") -> ClientState:
    return ClientState(7, status, 0, date(2020, 1, 1), "R$ ", "", None, invoices, (), None)


def _invoice(invoice_id: int, due: str, balance: str, status: str = "Unpaid",
             total: str = "100.00", paid: date | None = None) -> Invoice:
    return Invoice(invoice_id, str(invoice_id), status, date.fromisoformat(due),
                   date.fromisoformat(due), Decimal(total), Decimal(balance), paid)


def _step(episode: OpenEpisode | None, client: ClientState, today: date = TODAY) -> ep.EpisodeStep:
    return ep.step(episode, client, standing(client, POLICY, today), today, NOW)


# --- the pure rules ---------------------------------------------------------------------------


def test_an_invoice_past_the_grace_opens_an_episode_with_its_debt() -> None:
    within = _step(None, _client(_invoice(1, "2026-10-31", "100.00")))  # 2 days: within 3
    assert not within.changed
    step = _step(None, _client(_invoice(1, "2026-10-28", "100.00")))  # 5 days > grace 3
    assert step.opening is not None
    assert step.opening.amount == Decimal("100.00") and step.opening.opened_on == TODAY
    assert step.opening.currency_prefix == "R$ " and dict(step.opening.tracked) == {
        1: Decimal("100.00")}


def test_payments_are_recorded_and_the_paid_episode_ends_with_days_to_recover() -> None:
    episode = OpenEpisode(5, 7, date(2026, 10, 30), Decimal("100.00"), {1: Decimal("100.00")},
                          "overdue")
    partial = _step(episode, _client(_invoice(1, "2026-10-28", "40.00")))
    assert partial.payments == (Payment(1, Decimal("60.00"), TODAY),)
    assert partial.ending is None and dict(partial.tracked or {}) == {1: Decimal("40.00")}
    episode = OpenEpisode(5, 7, date(2026, 10, 30), Decimal("100.00"), {1: Decimal("40.00")},
                          "overdue", recovered=Decimal("60.00"))
    paid = _step(episode, _client(_invoice(1, "2026-10-28", "0", "Paid",
                                           paid=date(2026, 11, 1))))
    assert paid.payments == (Payment(1, Decimal("40.00"), date(2026, 11, 1)),)
    assert paid.ending is not None
    assert (paid.ending.how, paid.ending.recovered, paid.ending.days,
            paid.ending.ended_on) == ("paid", Decimal("100.00"), 2, date(2026, 11, 1))


@pytest.mark.parametrize("client, how", [
    (_client(_invoice(1, "2026-10-28", "100.00", "Cancelled")), "cancelled"),
    (_client(_invoice(1, "2026-10-28", "100.00"), status="Closed"), "client_closed"),
    (_client(_invoice(1, "2026-11-01", "100.00")), "other"),  # due date moved into the grace
])
def test_an_episode_ended_otherwise_says_how(client: ClientState, how: str) -> None:
    episode = OpenEpisode(5, 7, date(2026, 10, 30), Decimal("100.00"), {1: Decimal("100.00")},
                          "overdue")
    step = _step(episode, client)
    assert step.ending is not None
    assert (step.ending.how, step.ending.recovered, step.ending.days) == (how, 0, None)


def test_a_client_gone_from_whmcs_ends_its_episode() -> None:
    episode = OpenEpisode(5, 7, date(2026, 10, 30), Decimal("100.00"), {}, "overdue")
    step = ep.step(episode, None, None, TODAY, NOW)
    assert step.ending is not None and step.ending.how == "client_gone"
    assert not ep.step(None, None, None, TODAY, NOW).changed


@pytest.mark.parametrize("kind, before, after, expected", [
    ("group", "1", "2", "left_vip"),
    ("group", "2", "1", None),  # back into VIP
    ("ticket_priority", "High", "Low", "ticket_lowered"),
    ("ticket_priority", "Low", "Medium", None),  # restored
    ("ticket_department", "1", "2", "ticket_blocked"),
    ("ticket_note", None, "ids:1", None),
])
def test_changes_that_are_episode_actions(kind: str, before: str | None, after: str | None,
                                          expected: str | None) -> None:
    action = ep.change_action(kind, before, after, 1, 9, NOW, "vipgate")
    assert (action.kind if action else None) == expected


def _history(*invoices: PastInvoice, payments: tuple[PastPayment, ...] = (),
             status: str = "Active") -> ClientHistory:
    return ClientHistory(7, status, "R$ ", "", invoices, payments)


def _past(invoice_id: int, status: str, due: str, total: str = "100.00",
          paid: str | None = None, cancelled: str | None = None) -> PastInvoice:
    return PastInvoice(invoice_id, status, date.fromisoformat(due), Decimal(total),
                       date.fromisoformat(paid) if paid else None,
                       date.fromisoformat(cancelled) if cancelled else None)


def test_reconstruct_a_known_history() -> None:
    d = date.fromisoformat
    history = _history(
        _past(1, "Paid", "2026-08-01", paid="2026-08-03"),  # within the grace: no episode
        _past(2, "Paid", "2026-09-01", paid="2026-09-10"),  # past the grace 5 to 10 Sep
        _past(3, "Paid", "2026-10-01", paid="2026-10-12"),  # partly paid on 6 Oct
        _past(4, "Cancelled", "2026-10-03", total="50.00", cancelled="2026-10-20"),
        _past(5, "Unpaid", "2026-10-28", total="80.00"),  # past the grace since 1 Nov
        payments=(PastPayment(1, Decimal("100.00"), d("2026-08-03")),
                  PastPayment(2, Decimal("100.00"), d("2026-09-10")),
                  PastPayment(3, Decimal("30.00"), d("2026-10-06")),
                  PastPayment(3, Decimal("70.00"), d("2026-10-12"))))
    found = reconstruct(history, POLICY, TODAY)
    assert [(e.opened_on, e.amount, e.ended_on, e.how, e.recovered, e.days) for e in found] == [
        (d("2026-09-05"), Decimal("100.00"), d("2026-09-10"), "paid", Decimal("100.00"), 5),
        (d("2026-10-05"), Decimal("100.00"), d("2026-10-20"), "cancelled", Decimal("100.00"),
         None),
        (d("2026-11-01"), Decimal("80.00"), None, None, Decimal(0), None)]
    assert found[1].payments == (Payment(3, Decimal("30.00"), d("2026-10-06")),
                                 Payment(3, Decimal("70.00"), d("2026-10-12")))
    assert dict(found[2].tracked) == {5: Decimal("80.00")}
    assert reconstruct(history, POLICY, TODAY) == found  # the same every time


def test_reconstruct_ignores_debts_under_the_minimum_and_counts_business_days() -> None:
    small = _history(_past(1, "Unpaid", "2026-10-01", total="5.00"))
    policy = default_settings().replace(policy={"min_overdue_amount": "10"}).policy
    assert reconstruct(small, policy, TODAY) == []
    business = default_settings().replace(policy={"grace_days": 3,
                                                  "grace_in_business_days": True}).policy
    # due Friday 30 Oct: 3 business days end Wednesday 4 Nov; past the grace on Thursday 5
    assert late_from(date(2026, 10, 30), 3, True) == date(2026, 11, 5)
    friday = _history(_past(1, "Unpaid", "2026-10-30"))
    assert reconstruct(friday, business, date(2026, 11, 4)) == []
    assert [e.opened_on for e in reconstruct(friday, business, date(2026, 11, 5))] == [
        date(2026, 11, 5)]


# --- live, through the sandbox WHMCS ----------------------------------------------------------


def _vip_client(w: World, name: str, due: str = "2026-10-28",
                amount: str = "89.90") -> tuple[int, int, int]:
    with w.sandbox.quiet():
        client = w.sandbox.add_client(name, "Silva", groupid=w.vip, datecreated="2020-01-15")
        service = w.sandbox.add_service(client, due, "Monthly", amount)
        invoice = w.sandbox.add_invoice(client, due, [("Hosting", service, "Plano", amount)])
    return client, service, invoice


def test_an_overdue_vip_episode_records_its_actions_and_closes_on_payment(world: World) -> None:
    w = world
    ana, service, invoice = _vip_client(w, "Ana")  # due 28 Oct, today 2 Nov: 5 days > 3
    ticket = w.sandbox.open_ticket(ana, w.support, "Site lento", priority="High").ticket_id
    w.drain()
    [opened] = w.store.episodes(ana)
    assert opened.open and opened.opened_on == date(2026, 11, 2)
    assert opened.amount == Decimal("89.90") and opened.currency_prefix == "$"
    kinds = [(a.kind, a.ticket_id) for a in opened.actions]
    assert ("left_vip", None) in kinds and ("ticket_lowered", ticket) in kinds
    # suspended by WHMCS (a service status change), then a ticket blocked by the gate
    w.sandbox.suspend_service(service, "Overdue on Payment")
    w.drain()
    blocked = w.sandbox.open_ticket(ana, w.support, "Outro")
    assert not blocked.ok
    # the gate answers first and adds the action once the answer is sent (its server
    # thread, a moment later)
    deadline = time.monotonic() + 5
    while w.store.episodes(ana)[0].actions[-1].kind != "ticket_blocked" \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    [suspended] = w.store.episodes(ana)
    assert [a.kind for a in suspended.actions][-2:] == ["suspended", "ticket_blocked"]
    assert suspended.standing == "suspended"
    # two days later she pays: the episode ends, paid, in 2 days
    w.sandbox.clock.advance(days=2)
    w.sandbox.add_payment(invoice)
    w.drain()
    [paid] = w.store.episodes(ana)
    assert not paid.open and paid.how == "paid"
    assert (paid.recovered, paid.days, paid.ended_on) == (Decimal("89.90"), 2,
                                                          date(2026, 11, 4))
    assert paid.payments == (Payment(invoice, Decimal("89.90"), date(2026, 11, 4)),)
    assert w.store.open_episode(ana) is None


def test_a_cancelled_invoice_ends_the_episode_as_cancelled(world: World) -> None:
    w = world
    bruno, _, invoice = _vip_client(w, "Bruno", amount="100.00")
    w.sandbox.update_client(bruno, firstname="Bruno")
    w.drain()
    w.sandbox.add_payment(invoice, "30.00")
    w.drain()
    w.sandbox.update_invoice(invoice, status="Cancelled")
    w.drain()
    [ended] = w.store.episodes(bruno)
    assert (ended.how, ended.recovered, ended.written_off, ended.days) == (
        "cancelled", Decimal("30.00"), Decimal("70.00"), None)


def test_one_open_episode_per_client_whatever_opens_it(world: World) -> None:
    w = world
    carla, _, _ = _vip_client(w, "Carla")
    w.sandbox.update_client(carla, firstname="Carla")
    w.drain()
    # a resync (drift repair) right after the worker: nothing to open again
    Resync(w.engine, WhmcsDbReader(w.whmcs_database_url)).run(dry_run=False)
    assert len(w.store.episodes(carla)) == 1
    # two writers opening at once: the unique index keeps one
    step = ep.EpisodeStep(opening=ep.Opening(NOW, TODAY, Decimal(1), "", "", {}))
    dani = 999
    failed: list[BaseException] = []

    def open_one() -> None:
        try:
            w.store.record(dani, [], step, NOW)
        except Exception as exc:
            failed.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert len(w.store.episodes(dani)) == 1 and w.store.open_episode(dani) is not None


def test_a_promise_is_an_action_of_the_open_episode(world: World) -> None:
    w = world
    eva, _, _ = _vip_client(w, "Eva")
    w.sandbox.update_client(eva, firstname="Eva")
    w.drain()
    step = ep.EpisodeStep(actions=(ep.Action(ep.PROMISE, NOW, "maria", None,
                                             "until 2026-11-10"),))
    w.store.record(eva, [], step, NOW)
    [episode] = w.store.episodes(eva)
    assert (episode.actions[-1].kind, episode.actions[-1].actor) == ("promise", "maria")
    assert not w.store.add_episode_action(12345, step.actions[0])  # no open episode: nothing


# --- the backfill -----------------------------------------------------------------------------


def _history_client(w: World) -> tuple[int, dict[str, int]]:
    """A client whose past WHMCS kept: paid late in September, part-paid in October then
    cancelled, owing since 28 Oct (today is 2 Nov)."""
    s = w.sandbox
    with s.quiet():
        client = s.add_client("Fabio", "Souza", groupid=w.regular, datecreated="2020-01-15")
        service = s.add_service(client, "2026-11-28", "Monthly", "100.00")
        ids = {}
        for name, due in (("sep", "2026-09-01"), ("oct", "2026-10-01"), ("late", "2026-10-28")):
            ids[name] = s.add_invoice(client, due, [("Hosting", service, "Plano", "100.00")])
        s.add_payment(ids["sep"], date="2026-09-10 10:00:00")
        s.add_payment(ids["oct"], "30.00", date="2026-10-06 10:00:00")
        s.clock.set(datetime(2026, 10, 20, 9, 0))
        s.update_invoice(ids["oct"], status="Cancelled")
        s.clock.set(datetime(2026, 11, 2, 9, 0))
    return client, ids


def test_the_backfill_reconstructs_the_history_and_is_idempotent(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    client, ids = _history_client(w)
    with w.sandbox.quiet():  # another client, so that two processes get a range each
        other = w.sandbox.add_client("Gil", "Lima", datecreated="2020-01-15")
        w.sandbox.add_invoice(other, "2026-10-01", [("Other", 0, "Setup", "10.00")])
    now = w.sandbox.clock.aware

    def backfill(processes: int = 1, api: bool = False) -> tuple[int, int, int]:
        reader = HistoryApiReader(w.api()) if api else HistoryDbReader(w.whmcs_database_url)
        try:
            result = run_backfill(w.store, w.settings, reader, now, processes=processes)
        finally:
            reader.dispose()
        return result.inserted, result.updated, result.deleted

    assert backfill() == (4, 0, 0)
    found = sorted(w.store.episodes(client), key=lambda e: e.opened_on)
    d = date.fromisoformat
    assert [(e.opened_on, e.ended_on, e.how, e.recovered, e.days, e.source) for e in found] == [
        (d("2026-09-05"), d("2026-09-10"), "paid", Decimal("100.00"), 5, "backfill"),
        (d("2026-10-05"), d("2026-10-20"), "cancelled", Decimal("30.00"), None, "backfill"),
        (d("2026-11-01"), None, None, Decimal(0), None, "backfill")]
    assert found[1].payments == (Payment(ids["oct"], Decimal("30.00"), d("2026-10-06")),)
    assert backfill() == (0, 0, 0)  # twice: the same episodes, nothing written
    assert sorted(w.store.episodes(client), key=lambda e: e.opened_on) == found
    # read and reconstructed in two processes, a range of client ids each: the same
    monkeypatch.setattr("bridge.resync.backfill.RANGE_CLIENTS", 1)
    assert backfill(processes=2) == (0, 0, 0)
    assert sorted(w.store.episodes(client), key=lambda e: e.opened_on) == found
    # through WHMCS's API (GetInvoices, GetClients, GetTransactions): the same history
    assert backfill(api=True) == (0, 0, 0)
    assert sorted(w.store.episodes(client), key=lambda e: e.opened_on) == found
    # the engine carries the open one on: paid now, it ends with the days since 1 Nov
    w.sandbox.add_payment(ids["late"])
    w.drain()
    latest = w.store.episodes(client)[0]
    assert (latest.opened_on, latest.how, latest.days, latest.recovered) == (
        d("2026-11-01"), "paid", 1, Decimal("100.00"))
    assert backfill() == (0, 0, 0)  # what the engine carried on is left alone
    assert len(w.store.episodes(client)) == 3


def test_the_backfill_leaves_the_client_s_live_episode_alone(store: Store) -> None:
    """A client whose episode the engine opened today keeps it; the past is added before."""
    client = 7
    live = ep.EpisodeStep(opening=ep.Opening(NOW, TODAY, Decimal("80.00"), "R$ ", "",
                                             {5: Decimal("80.00")}))
    store.record(client, [], live, NOW)
    past = reconstruct(_history(
        _past(2, "Paid", "2026-09-01", paid="2026-09-10"),
        _past(5, "Unpaid", "2026-10-28", total="80.00")), POLICY, TODAY)
    assert [e.ended_on for e in past] == [date(2026, 9, 10), None]
    starts = {d: datetime.combine(d, datetime.min.time(), UTC) for d in
              (date(2026, 9, 5), date(2026, 9, 10), date(2026, 11, 1))}
    # the open one of the past is the live one: only September is added
    assert store.write_past_episodes({client: past}, starts.__getitem__, NOW) == (1, 0, 0)
    found = store.episodes(client)
    assert [(e.source, e.open, e.opened_on) for e in found] == [
        ("live", True, TODAY), ("backfill", False, date(2026, 9, 5))]
    assert store.write_past_episodes({client: past}, starts.__getitem__, NOW) == (0, 0, 0)


@pytest.mark.parametrize("source", ["db", "api"])
def test_vipgate_backfill_prints_progress_and_a_summary(world: World, source: str) -> None:
    w = world
    _history_client(w)
    settings = w.settings.replace(whmcs={"database_url": w.whmcs_database_url})
    out, err = io.StringIO(), io.StringIO()
    assert run_backfill_command(settings, w.store, now=lambda: w.sandbox.clock.aware,
                                as_json=False, out=out, err=err, tty=False,
                                source=source) == 0
    assert out.getvalue().startswith(
        "backfill: 1 clients with invoices past the grace, 3 episodes (1 open today)")
    assert "written: 3 new, 0 updated, 0 removed" in out.getvalue()
    assert "vipgate: backfill 1/" in err.getvalue()
    assert backfilled(w.store)
    out = io.StringIO()
    run_backfill_command(settings, w.store, now=lambda: w.sandbox.clock.aware, as_json=True,
                         out=out, err=io.StringIO(), tty=False, source=source)
    assert json.loads(out.getvalue())["inserted"] == 0


def test_vipgate_backfill_names_what_is_missing(world: World) -> None:
    settings = world.settings.replace(whmcs={"database_url": ""})
    with pytest.raises(Failure, match=r"\[whmcs\] database_url is empty"):
        run_backfill_command(settings, world.store, now=lambda: NOW, as_json=False,
                             out=io.StringIO(), err=io.StringIO(), tty=False, source="db")


def test_the_first_full_resync_backfills_first_and_carries_the_open_episode_on(
        world: World) -> None:
    w = world
    client, _ = _history_client(w)
    settings = w.settings.replace(whmcs={"database_url": w.whmcs_database_url})
    out = io.StringIO()
    assert run_resync(settings, dry_run=False, client_ids=(), source="db", as_json=False,
                      out=out, err=io.StringIO(), tty=False,
                      now=lambda: w.sandbox.clock.aware) == 0
    assert out.getvalue().startswith("backfill: 1 clients with invoices past the grace")
    found = w.store.episodes(client)
    assert [(e.opened_on, e.open) for e in found] == [
        (date(2026, 11, 1), True), (date(2026, 10, 5), False), (date(2026, 9, 5), False)]
    out = io.StringIO()  # the next full resync: no backfill again, no second open episode
    run_resync(settings, dry_run=False, client_ids=(), source="db", as_json=False, out=out,
               err=io.StringIO(), tty=False, now=lambda: w.sandbox.clock.aware)
    assert "backfill:" not in out.getvalue()
    assert w.store.episodes(client) == found


def test_a_resync_opens_episodes_without_a_whmcs_write_in_bulk(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Overdue clients outside VIP: nothing to write in WHMCS, so their episodes open with the
    bulk bookkeeping (no lease, no second read), a suspended one with its suspension."""
    w = world
    clients = []
    with w.sandbox.quiet():
        for name in ("Hugo", "Iris"):
            client = w.sandbox.add_client(name, "Reis", groupid=w.regular,
                                          datecreated="2020-01-15")
            service = w.sandbox.add_service(client, "2026-10-20", "Monthly", "50.00")
            w.sandbox.add_invoice(client, "2026-10-20", [("Hosting", service, "Plano", "50.00")])
            clients.append((client, service))
        w.sandbox.suspend_service(clients[1][1], "Overdue on Payment")

    def no_lease_path(*args: object, **kwargs: object) -> None:
        raise AssertionError("an opening alone goes through the bulk bookkeeping")

    monkeypatch.setattr(w.engine, "apply", no_lease_path)
    result = Resync(w.engine, WhmcsDbReader(w.whmcs_database_url)).run(dry_run=False)
    assert result.applied == 0 and result.busy == 0
    hugo, iris = (w.store.episodes(c)[0] for c, _ in clients)
    assert hugo.open and hugo.amount == Decimal("50.00") and hugo.actions == ()
    assert iris.standing == "suspended" and [a.kind for a in iris.actions] == ["suspended"]
    Resync(w.engine, WhmcsDbReader(w.whmcs_database_url)).run(dry_run=False)
    assert [len(w.store.episodes(c)) for c, _ in clients] == [1, 1]
    assert w.store.episodes(clients[1][0])[0].actions == iris.actions
