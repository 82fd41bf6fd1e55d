"""The store on SQLite and MariaDB: migrations, the inbox, meta and the standing cache."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bridge.model import AuditEntry, CachedStanding, OverdueInvoice
from bridge.store import DatabaseNotReady, Store
from bridge.store.inbox import InboxEvent
from tests.helpers import FIXED_NOW


def _event(msg_id: str, hook: str = "InvoicePaid", client_id: int | None = None) -> InboxEvent:
    return InboxEvent(msg_id, hook, client_id, {"invoiceid": 5}, FIXED_NOW - timedelta(seconds=3),
                      FIXED_NOW)


def test_fresh_database_is_not_ready_until_upgraded(database_url) -> None:
    store = Store(database_url)
    try:
        with pytest.raises(DatabaseNotReady, match="vipgate db upgrade"):
            store.require_current()
        assert store.upgrade() == store.head()
        store.require_current()
        assert store.upgrade() == store.head()  # idempotent
    finally:
        store.dispose()


def test_migrations_go_down_and_up_again(store) -> None:
    from alembic import command

    command.downgrade(store._alembic_config(), "base")
    assert store.revision() is None
    assert store.upgrade() == store.head()


def test_enqueue_stores_once(store) -> None:
    assert store.enqueue(_event("msg_1", client_id=9)) == "queued"
    assert store.enqueue(_event("msg_1", client_id=9)) == "duplicate"
    row = store.get_event("msg_1")
    assert row is not None
    assert (row.hook, row.client_id, row.vars, row.state, row.attempts) == (
        "InvoicePaid", 9, {"invoiceid": 5}, "queued", 0)
    assert row.received_at == FIXED_NOW.replace(tzinfo=None)
    assert store.inbox_counts()["queued"] == 1


def test_concurrent_duplicates_store_one_row(store) -> None:
    outcomes: list[str] = []

    def send() -> None:
        outcomes.append(store.enqueue(_event("msg_race")))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate"] * 5 + ["queued"]
    assert len(store.events()) == 1


def test_enqueue_many_stores_new_ids_once_in_order(store) -> None:
    store.enqueue(_event("old"))
    events = [_event("b1", client_id=1), _event("old"), _event("b2"), _event("b1"),
              _event("b3", "ClientEdit", client_id=3)]
    assert store.enqueue_many(events) == ["queued", "duplicate", "queued", "duplicate",
                                          "queued"]
    assert [(e.webhook_id, e.hook, e.client_id) for e in store.events()] == [
        ("old", "InvoicePaid", None), ("b1", "InvoicePaid", 1), ("b2", "InvoicePaid", None),
        ("b3", "ClientEdit", 3)]
    assert store.enqueue_many(events) == ["duplicate"] * 5
    assert store.enqueue_many([]) == []


def test_enqueue_many_looks_again_when_a_rival_stored_an_id_meanwhile(
        store, monkeypatch) -> None:
    """Between enqueue_many's look at the known ids and its INSERT a rival stores one of the
    batch's ids: the whole INSERT fails (nothing of the batch stored), the ids are looked at
    again and the rest is stored; the rival's id is a duplicate."""
    from bridge.store import inbox as inbox_module

    real = inbox_module.write_inbox
    calls: list[int] = []

    def rival_first(db: object, rows: list[tuple[object, ...]]) -> None:
        calls.append(len(rows))
        if len(calls) == 1:
            # the rival, committed before our INSERT
            real(store, [inbox_module._new_row(_event("c2"))])
        real(store, rows)

    monkeypatch.setattr(inbox_module, "write_inbox", rival_first)
    outcome = store.enqueue_many([_event("c1"), _event("c2"), _event("c3")])
    assert outcome == ["queued", "duplicate", "queued"]
    assert calls == [3, 2]
    assert [e.webhook_id for e in store.events()] == ["c2", "c1", "c3"]


def test_concurrent_batches_of_the_same_ids_store_each_once(store) -> None:
    outcomes: list[list[str]] = []
    events = [_event(f"cb{n}") for n in range(50)]

    def send() -> None:
        outcomes.append(list(store.enqueue_many(events)))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 4
    for n in range(50):
        assert sorted(o[n] for o in outcomes) == ["duplicate"] * 3 + ["queued"]
    assert len(store.events()) == 50


def test_unicode_survives_the_round_trip(store) -> None:
    event = InboxEvent("msg_u", "ClientEdit", 3, {"userid": 3, "language": "português 🇧🇷"},
                       FIXED_NOW, FIXED_NOW)
    store.enqueue(event)
    assert store.get_event("msg_u").vars["language"] == "português 🇧🇷"


def test_generated_webhook_secret_is_made_once(store) -> None:
    first = store.webhook_secret()
    assert first.startswith("whsec_")
    assert Store(store.url).webhook_secret() == first


def test_standing_cache_round_trip_and_update(store) -> None:
    standing = CachedStanding(12, "overdue", 6, Decimal("89.90"),
                              (OverdueInvoice(1042, "2026/1042", Decimal("89.90"), "2026-11-15"),),
                              "R$ ", "", "portuguese-br", FIXED_NOW)
    store.put_standing(standing)
    assert store.get_standing(12) == standing.__class__(**{
        **standing.__dict__, "updated_at": FIXED_NOW.replace(tzinfo=None)})
    store.put_standing(CachedStanding(12, "current", 0, Decimal(0), (), "R$ ", "", None,
                                      FIXED_NOW))
    assert store.get_standing(12).standing == "current"
    assert store.get_standing(13) is None


def test_database_url_with_a_bad_password_fails_cleanly(mariadb_server) -> None:
    store = Store(mariadb_server.replace("root@", "root:wrong@") + "/test")
    with pytest.raises(sa.exc.OperationalError):
        store.ping()
    store.dispose()


def test_reasons_are_kept_as_messages_and_values_and_old_sentences_as_text(store) -> None:
    """The engine's reasons (with money, days, moments, groups, plurals and nested reasons)
    come back as they went in, ready for either language; a plain sentence (as older
    versions stored them) comes back as that sentence."""
    from bridge.i18n import Texts
    from bridge.model import Reason, WhmcsNames
    from bridge.policy.standing import standing
    from bridge.policy.state import Membership
    from bridge.policy.vip import vip_decision
    from tests.test_policy_standing import TODAY, client, inv, policy

    owing = client(inv(1042, days=8, total="1200.00", balance="1000.00", status="Collections"),
                   group_id=5)
    settings = policy(vip_group_id=5, default_group_id=2)
    now = standing(owing, settings, TODAY)
    held = Membership(pinned=True, held_since=FIXED_NOW, held_by="alice")
    decision = vip_decision(owing, held, now, settings, TODAY)
    assert all(isinstance(r, Reason) for r in (*now.reasons, *decision.reasons))
    store.put_standing(CachedStanding(12, "overdue", 8, Decimal("1000.00"), (), "R$ ", "", None,
                                      FIXED_NOW, standing_reasons=now.reasons,
                                      vip_reasons=(*decision.reasons, "an older sentence")))
    back = store.get_standing(12)
    assert back.standing_reasons == now.reasons
    assert back.vip_reasons == (*decision.reasons, "an older sentence")
    assert type(back.vip_reasons[-1]) is str
    names = WhmcsNames({5: "VIP Ouro"})
    for language in ("pt_BR", "en"):
        t = Texts(language)
        assert [t.reason(r, names) for r in back.vip_reasons] == [
            t.reason(r, names) for r in (*decision.reasons, "an older sentence")]
    shown = [Texts("pt_BR").reason(r, names) for r in back.vip_reasons]
    assert shown[1] == ("situação em atraso: fatura #1042 R$ 1.000,00 (de R$ 1.200,00) em "
                        "Cobrança vencida há 8 dias > carência 3")
    assert shown[2].startswith("mantido por alice desde 21/11/2026 ")
    assert shown[-1] == "an older sentence"


def test_the_reasons_of_a_client_with_many_overdue_invoices_fit(store) -> None:
    """Kept as messages with values, 200 overdue invoices make about 80 KB of reasons: more
    than MariaDB's TEXT holds (migration 0008 makes the standing cache's and the audit log's
    columns MEDIUMTEXT)."""
    from bridge.policy.standing import standing
    from bridge.policy.state import Membership
    from bridge.policy.vip import vip_decision
    from bridge.store.reasons import dump_reasons
    from tests.test_policy_standing import TODAY, client, inv, policy

    owing = client(*(inv(1000 + i, days=10 + i, total="1200.00") for i in range(200)),
                   group_id=5)
    settings = policy(vip_group_id=5, default_group_id=2)
    now = standing(owing, settings, TODAY)
    decision = vip_decision(owing, Membership(pinned=True), now, settings, TODAY)
    assert len(dump_reasons(decision.reasons).encode()) > 65535
    store.put_standing(CachedStanding(12, "overdue", 209, Decimal("240000.00"), (), "R$ ", "",
                                      None, FIXED_NOW, standing_reasons=now.reasons,
                                      vip_reasons=decision.reasons))
    back = store.get_standing(12)
    assert (back.standing_reasons, back.vip_reasons) == (now.reasons, decision.reasons)
    # the group change they cause is audited with them
    store.add_audit([AuditEntry(FIXED_NOW, "vipgate", "group", 12, None, "5", "2",
                                decision.reasons)])
    [entry] = store.audit_log(client_id=12)
    assert entry.reasons == decision.reasons
