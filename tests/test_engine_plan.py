"""Properties of the pure plan, with WHMCS simulated as plain data: after a reconcile VIP
never holds a client who owes past the grace (but for a staff hold); a second reconcile
changes nothing; the same payments in any order end in the same state; staff decisions are
followed."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.engine.plan import ClientPlan, OpenTicket, plan_client
from bridge.model import ClientMemory, TicketMemory
from bridge.policy.state import ClientState, Invoice, Promise, Service
from bridge.settings import default_settings

TODAY = date(2026, 11, 21)
NOW = datetime(2026, 11, 21, 12, 0)
VIP, REGULAR, OTHER = 5, 2, 7
BASE = default_settings().replace(policy={"vip_group_id": VIP, "default_group_id": REGULAR,
                                          "min_tenure_months": 0, "promote_by_rules": True})
PRIORITY = st.sampled_from(["Low", "Medium", "High"])


@st.composite
def invoices(draw: st.DrawFn) -> tuple[Invoice, ...]:
    out = []
    for n in range(draw(st.integers(0, 4))):
        status = draw(st.sampled_from(["Unpaid", "Paid", "Payment Pending", "Cancelled"]))
        due = TODAY - timedelta(days=draw(st.integers(-10, 40)))
        total = Decimal(draw(st.integers(1, 500)))
        balance = total if status in ("Unpaid", "Payment Pending") else Decimal(0)
        if balance and draw(st.booleans()):
            balance = Decimal(draw(st.integers(1, int(total))))
        paid = due + timedelta(days=draw(st.integers(-3, 9))) if status == "Paid" else None
        out.append(Invoice(100 + n, str(100 + n), status, due - timedelta(days=7), due, total,
                           balance, paid))
    return tuple(out)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[ClientState, tuple[OpenTicket, ...], ClientMemory]:
    services = tuple(Service(10 + n, draw(st.sampled_from(["Active", "Suspended"])), "", None)
                     for n in range(draw(st.integers(0, 2))))
    promise = Promise(TODAY + timedelta(days=draw(st.integers(-3, 3))), "") \
        if draw(st.booleans()) else None
    client = ClientState(1, draw(st.sampled_from(["Active", "Active", "Inactive"])),
                         draw(st.sampled_from([VIP, REGULAR, OTHER, 0])), date(2020, 1, 1),
                         "R$ ", "", None, draw(invoices()), services, promise)
    tickets = tuple(OpenTicket(500 + n, 1, draw(PRIORITY))
                    for n in range(draw(st.integers(0, 3))))
    memory = ClientMemory(1, draw(st.booleans()), draw(st.booleans()),
                          draw(st.sampled_from([None, REGULAR, OTHER])),
                          draw(st.sampled_from([None, VIP, REGULAR, OTHER])), None,
                          known=draw(st.booleans()))
    return client, tickets, memory


def plan(client: ClientState, tickets: tuple[OpenTicket, ...], memory: ClientMemory,
         records: dict[int, TicketMemory], policy_overrides: dict[str, object] | None = None
         ) -> ClientPlan:
    config = BASE.replace(policy=policy_overrides) if policy_overrides else BASE
    return plan_client(client, tickets, memory, records, config.policy, config.tickets, "en",
                       TODAY, NOW)


def apply(p: ClientPlan, client: ClientState, tickets: tuple[OpenTicket, ...]
          ) -> tuple[ClientState, tuple[OpenTicket, ...], ClientMemory, dict[int, TicketMemory]]:
    """What WHMCS and vipgate's memory hold once the plan's changes are applied."""
    priorities = {c.ticket_id: c.after for c in p.changes if c.kind == "ticket_priority"}
    tickets = tuple(replace(t, priority=priorities.get(t.id) or t.priority) for t in tickets)
    records = {tid: r for tid, r in p.tickets.items() if not r.empty}
    return (replace(client, group_id=p.decision.target_group_id), tickets, p.memory_after,
            records)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_after_a_reconcile_vip_holds_no_client_owing_past_the_grace(world) -> None:  # type: ignore[no-untyped-def]
    client, tickets, memory = world
    first = plan(client, tickets, memory, {})
    after, *_ = apply(first, client, tickets)
    if after.group_id == VIP and not first.decision.held:  # a staff hold is staff's decision
        assert first.standing.kind == "current"
        assert first.standing.overdue_total == 0


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_a_second_reconcile_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    client, tickets, memory = world
    first = plan(client, tickets, memory, {})
    client2, tickets2, memory2, records2 = apply(first, client, tickets)
    second = plan(client2, tickets2, memory2, records2)
    assert second.changes == ()
    assert second.observations == ()


@settings(max_examples=150, deadline=None)
@given(worlds(), st.permutations(range(4)), st.data())
def test_payments_in_any_order_end_in_the_same_state(world, order, data) -> None:  # type: ignore[no-untyped-def]
    client, tickets, memory = world
    owed = [i for i in client.invoices if i.owed]
    payments = [(inv.id, data.draw(st.booleans())) for inv in owed]  # (invoice, in full?)

    def run(sequence: list[tuple[int, bool]]) -> tuple[object, ...]:
        c, t, m, r = client, tickets, memory, {}
        p = plan(c, t, m, r)
        c, t, m, r = apply(p, c, t)
        for invoice_id, full in sequence:
            paid = tuple(
                replace(i, status="Paid" if full else i.status,
                        balance=Decimal(0) if full else max(i.balance - 1, Decimal(1)),
                        datepaid=TODAY if full else None) if i.id == invoice_id else i
                for i in c.invoices)
            c = replace(c, invoices=paid)
            c, t, m, r = apply(plan(c, t, m, r), c, t)
        return c.group_id, tuple(x.priority for x in t)

    forward = run(payments)
    shuffled = [payments[i] for i in order if i < len(payments)]
    assert run(shuffled) == forward


def test_staff_move_out_of_vip_is_followed_and_own_moves_are_not_staff() -> None:
    client = ClientState(1, "Active", REGULAR, date(2020, 1, 1), "", "", None, (), (), None)
    memory = ClientMemory(1, pinned=True, last_group_id=VIP, known=True)
    p = plan(client, (), memory, {})
    assert p.changes == () and p.memory.excluded and not p.memory.pinned
    assert [o.actor for o in p.observations] == ["staff"]
    # the same move, but vipgate was writing it (pending): its own change
    mine = plan(client, (), replace(memory, pending_group_id=REGULAR), {})
    assert mine.observations == () and mine.memory.pinned and not mine.memory.excluded


def test_a_pending_priority_write_that_did_not_land_is_not_mistaken_for_staff() -> None:
    owes = Invoice(1, "1", "Unpaid", date(2026, 10, 1), date(2026, 10, 10), Decimal(10),
                   Decimal(10), None)
    client = ClientState(1, "Active", REGULAR, date(2020, 1, 1), "", "", None, (owes,), (),
                         None)
    ticket = OpenTicket(9, 1, "Medium")
    record = TicketMemory(9, 1, original_priority="Medium", pending_priority="Low")
    p = plan(client, (ticket,), ClientMemory(1, last_group_id=REGULAR, known=True),
             {9: record})
    assert [(c.kind, c.after) for c in p.changes if c.kind == "ticket_priority"] == [
        ("ticket_priority", "Low")]


def test_a_priority_changes_and_a_staff_notes_reasons_read_in_portuguese() -> None:
    from bridge.i18n import Texts

    client = ClientState(1, "Active", REGULAR, date(2020, 1, 1), "", "", None, (OWED,), (),
                         None)
    p = plan(client, (OpenTicket(9, 1, "Medium"),),
             ClientMemory(1, last_group_id=REGULAR, known=True), {})
    [change] = [c for c in p.changes if c.kind == "ticket_priority"]
    assert change.reasons == ("standing overdue", "priority Medium set to Low")
    assert [Texts("pt_BR").reason(r) for r in change.reasons] == [
        "situação em atraso", "prioridade Média alterada para Baixa"]
    [note] = [c for c in p.changes if c.kind == "ticket_note"]
    assert note.reasons == ("standing overdue: staff note with the overdue invoices",)
    assert [Texts("pt_BR").reason(r) for r in note.reasons] == [
        "situação em atraso: nota para a equipe com as faturas vencidas"]
    # the changes themselves, as the logs and the admin client page name them
    assert (change.summary, note.summary) == ("ticket #9 priority Medium -> Low",
                                              "ticket #9 staff note")
    assert [Texts("pt_BR").reason(c.summary) for c in (change, note)] == [
        "ticket #9: prioridade Média -> Baixa", "ticket #9: nota para a equipe"]


def test_a_group_change_is_named_with_the_groups_names() -> None:
    from bridge.i18n import Texts
    from bridge.model import WhmcsNames

    client = ClientState(1, "Active", VIP, date(2020, 1, 1), "", "", None, (OWED,), (), None)
    p = plan(client, (), ClientMemory(1, last_group_id=VIP, known=True), {})
    group = p.group_change
    assert group is not None and group.summary == f"group {VIP} -> {REGULAR}"
    names = WhmcsNames({VIP: "VIP Ouro", REGULAR: "Clientes"})
    assert Texts("pt_BR").reason(group.summary, names) == (
        f"grupo VIP Ouro (#{VIP}) -> Clientes (#{REGULAR})")
    assert Texts("en").reason(group.summary, WhmcsNames()) == f"group #{VIP} -> #{REGULAR}"


OWED = Invoice(1, "1", "Unpaid", date(2026, 10, 1), date(2026, 10, 10), Decimal(10),
               Decimal(10), None)


def test_staff_putting_an_owing_client_into_vip_is_a_hold_kept_until_paid_up() -> None:
    """Respected, not fought: no change back out of VIP while it owes; once paid up the hold
    ends and the normal rules apply (pinned: it stays, and leaves again if it stops paying)."""
    owing = ClientState(1, "Active", VIP, date(2020, 1, 1), "", "", None, (OWED,), (), None)
    memory = ClientMemory(1, last_group_id=REGULAR, known=True)
    moved = plan(owing, (), memory, {})
    assert moved.changes == () and moved.decision.held and moved.decision.in_vip
    assert moved.memory.held_since == NOW and moved.memory.pinned
    assert moved.observations[0].actor == "staff"
    assert "a staff hold, kept in VIP until it is paid up" in moved.observations[0].reasons[1]
    assert any(r.startswith("staff hold since 2026-11-21 12:00 UTC") for r in
               moved.decision.reasons)
    # the next reconcile (still owing) keeps it, and changes nothing
    again = plan(owing, (), moved.memory_after, {})
    assert again.changes == () and again.observations == () and again.decision.held
    # paid up: the hold ends, in VIP by the pin
    paid = replace(owing, invoices=(replace(OWED, status="Paid", balance=Decimal(0),
                                            datepaid=TODAY),))
    ended = plan(paid, (), again.memory_after, {})
    assert ended.changes == () and ended.memory.held_since is None
    assert [(o.actor, o.before, o.after) for o in ended.observations] == [
        ("vipgate", "pinned+held", "pinned")]
    # owing again later: the normal rules take it out of VIP
    late = plan(owing, (), ended.memory_after, {})
    assert [c.after for c in late.changes if c.kind == "group"] == [str(REGULAR)]


def test_the_admin_an_event_names_is_kept_with_the_hold() -> None:
    owing = ClientState(1, "Active", VIP, date(2020, 1, 1), "", "", None, (OWED,), (), None)
    config = BASE
    p = plan_client(owing, (), ClientMemory(1, last_group_id=REGULAR, known=True), {},
                    config.policy, config.tickets, "en", TODAY, NOW, staff="alice")
    assert p.memory.held_by == "alice" and p.memory.held_since == NOW
    assert p.observations[0].reasons[0].endswith("into VIP: pinned (by alice)")
    assert any(r.startswith("staff hold since 2026-11-21 12:00 UTC by alice: ")
               for r in p.decision.reasons)
    paid = replace(owing, invoices=(replace(OWED, status="Paid", balance=Decimal(0),
                                            datepaid=TODAY),))
    ended = plan(paid, (), p.memory_after, {})
    assert ended.memory.held_by is None
    assert "the staff hold since 2026-11-21 12:00 UTC by alice ends" in \
        ended.observations[0].reasons[0]


def test_the_staff_decisions_read_in_portuguese_with_the_group_names() -> None:
    from bridge.i18n import Texts
    from bridge.model import WhmcsNames

    owing = ClientState(1, "Active", VIP, date(2020, 1, 1), "", "", None, (OWED,), (), None)
    names = WhmcsNames({VIP: "VIP Ouro", REGULAR: "Clientes"})
    pt = Texts("pt_BR")
    p = plan_client(owing, (), ClientMemory(1, last_group_id=REGULAR, known=True), {},
                    BASE.policy, BASE.tickets, "en", TODAY, NOW, staff="alice")
    assert [pt.reason(r, names) for r in p.observations[0].reasons] == [
        f"a equipe moveu o cliente do grupo Clientes (#{REGULAR}) para o VIP: fixado "
        "(por alice)",
        "o cliente está devendo: mantido no VIP pela equipe até quitar"]
    paid = replace(owing, invoices=(replace(OWED, status="Paid", balance=Decimal(0),
                                            datepaid=TODAY),))
    ended = plan(paid, (), p.memory_after, {})
    assert [pt.reason(r, names) for r in ended.observations[0].reasons] == [
        "quitado: termina a manutenção no VIP (mantido por alice desde 21/11/2026 12:00 UTC); "
        "valem as regras normais"]
    first = plan_client(replace(owing, invoices=()), (), ClientMemory(1), {}, BASE.policy,
                        BASE.tickets, "en", TODAY, NOW)
    [adopted] = first.observations[0].reasons
    assert adopted == (f"in VIP group {VIP} when vipgate first saw the client: adopted as "
                       "pinned (the owner chose it)")
    assert pt.reason(adopted, names) == (
        f"no grupo VIP VIP Ouro (#{VIP}) quando o vipgate viu o cliente pela primeira vez: "
        "adotado como fixado (escolha do dono)")


def test_staff_putting_a_paying_client_into_vip_starts_no_hold() -> None:
    paying = ClientState(1, "Active", VIP, date(2020, 1, 1), "", "", None, (), (), None)
    p = plan(paying, (), ClientMemory(1, last_group_id=REGULAR, known=True), {})
    assert p.memory.held_since is None and p.memory.pinned and not p.decision.held


def test_staff_taking_a_held_client_out_of_vip_ends_the_hold() -> None:
    owing = ClientState(1, "Active", REGULAR, date(2020, 1, 1), "", "", None, (OWED,), (), None)
    memory = ClientMemory(1, pinned=True, last_group_id=VIP, known=True, held_since=NOW)
    p = plan(owing, (), memory, {})
    assert p.changes == () and p.memory.held_since is None and p.memory.excluded
