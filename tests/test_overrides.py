"""Settings saved from the admin page (bridge.overrides): validation with the config's wording,
what is stored and versioned, and every process following a change without a restart. On
SQLite and on MariaDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge import overrides
from bridge.model import CachedStanding, OverdueInvoice
from bridge.overrides import LiveSettings, editable_keys, parse, save, text_of
from bridge.runtime import make_reconcile_engine, runtime
from bridge.settings import ConfigError, Settings, load_settings
from bridge.store import Store
from bridge.store.tables import setting_override
from bridge.web.app import create_app
from tests.helpers import FIXED_NOW, envelope, post_signed

AT = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)

# --- parse: (section, key, bad value, message; the config error says the same) --------------

BAD_VALUES = [
    ("policy", "grace_days", "three", "expected a whole number from 0 to 365"),
    ("policy", "grace_days", "366", "expected a whole number from 0 to 365"),
    ("policy", "grace_days", "-1", "expected a whole number from 0 to 365"),
    ("policy", "grace_days", "2.5", "expected a whole number from 0 to 365"),
    ("policy", "lookback_months", "0", "expected a whole number from 1 to 120"),
    ("policy", "vip_group_id", "VIP", "expected a whole number from 0 to 4294967295"),
    ("policy", "grace_in_business_days", "maybe", "expected on or off"),
    ("policy", "min_spend", "-5", "expected an amount of money like 10 or 89.90, not negative"),
    ("policy", "min_spend", "89,90", "expected an amount of money like 10 or 89.90"),
    ("policy", "min_overdue_amount", "NaN", "expected an amount of money like 10 or 89.90"),
    ("tickets", "priority_overdue", "Urgent", "expected one of Low, Medium, High, keep"),
    ("tickets", "block_when", "always", "expected one of suspended, overdue, never"),
    ("tickets", "billing_departments", "billing", "expected comma-separated WHMCS ids like 1, 4"),
    ("tickets", "billing_departments", "0", "expected comma-separated WHMCS ids like 1, 4"),
    ("tickets", "staff_note", "2", "expected on or off"),
    ("tickets", "block_message_en", "   ", "expected a message of 1 to 1000 characters"),
    ("tickets", "block_message_en", "x" * 1001, "expected a message of 1 to 1000 characters"),
    ("tickets", "block_message_pt_br", "Pague {valor}", "unknown placeholder {valor}"),
    ("tickets", "block_message_en", "Pay {total", "expected { and } only around a placeholder"),
]


@pytest.mark.parametrize(("section", "key", "value", "message"),
                         [pytest.param(*case, id=f"{case[1]}={case[2][:12]!r}")
                          for case in BAD_VALUES])
def test_bad_value_is_refused_with_the_config_errors_wording(
        tmp_path: Path, section: str, key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse(section, key, value)
    assert str(refused.value).startswith(message)
    empty = tmp_path / "vipgate.ini"
    empty.write_text("")
    with pytest.raises(ConfigError) as config_error:
        load_settings(empty, environ={f"VIPGATE_{section}_{key}".upper(): value})
    assert str(config_error.value).endswith(str(refused.value))


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("tickets", "block_message_en", "Pay {total:d}", "a placeholder cannot be filled"),
    ("tickets", "block_message_en", "Pay {days:%Y}", "a placeholder cannot be filled"),
    ("bridge", "database_url", "sqlite:///other.db", "cannot be changed from the admin page"),
    ("policy", "no_such_key", "1", "cannot be changed from the admin page"),
])
def test_what_the_page_may_not_save(section: str, key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(section, key, value)


@pytest.mark.parametrize(("section", "key", "value", "canonical"), [
    ("policy", "grace_days", " 07 ", "7"),
    ("policy", "grace_in_business_days", "Yes", "on"),
    ("policy", "follow_staff_changes", "0", "off"),
    ("policy", "min_spend", "10", "10.00"),
    ("tickets", "priority_vip", "medium", "Medium"),
    ("tickets", "billing_departments", "4, 1,4", "1,4"),
    ("tickets", "billing_departments", "", ""),
    ("tickets", "block_message_en", "Pay  {total}\n now {{x}}", "Pay {total} now {{x}}"),
])
def test_good_value_is_stored_in_canonical_form(section: str, key: str, value: str,
                                                canonical: str) -> None:
    assert parse(section, key, value) == canonical


def test_every_policy_tickets_panels_and_trust_key_is_editable_and_nothing_else() -> None:
    keys = editable_keys()
    assert {s for s, _ in keys} == {"policy", "tickets", "panels", "trust"}
    assert ("policy", "grace_days") in keys and ("tickets", "block_message_pt_br") in keys
    assert ("panels", "home_banner") in keys and ("trust", "enabled") in keys
    assert len(keys) == len(set(keys)) == 14 + 12 + 2 + 3


# --- save and history ------------------------------------------------------------------------


def in_force(store: Store, base: Settings) -> Settings:
    return overrides.effective(base, overrides.saved_values(store))


def whole_form(settings: Settings, **changed: str) -> dict[tuple[str, str], str]:
    """What the page sends: every key, with the value shown, some of them changed."""
    wanted = {(s, k): text_of(settings, s, k) for s, k in editable_keys()}
    for name, value in changed.items():
        section, key = name.split("__")
        wanted[(section, key)] = value
    return wanted


def test_save_stores_only_the_values_that_differ(store, settings) -> None:
    changes, errors = save(store, settings, whole_form(settings, policy__grace_days="5"),
                           actor="alice", now=AT)
    assert errors == {}
    assert [(c.section, c.key, c.old, c.new) for c in changes] == [
        ("policy", "grace_days", "3", "5")]
    assert overrides.saved_values(store) == {("policy", "grace_days"): "5"}
    assert overrides.version(store) == changes[0].id
    assert in_force(store, settings).policy.grace_days == 5


def test_same_amount_written_differently_is_no_change(store, settings) -> None:
    changes, errors = save(store, settings, {("policy", "min_spend"): "0",
                                             ("policy", "min_overdue_amount"): "0.00",
                                             ("tickets", "billing_departments"): " ",
                                             ("tickets", "priority_vip"): "high"},
                           actor="alice", now=AT)
    assert (changes, errors) == ([], {})
    assert overrides.version(store) == 0


def test_value_equal_to_the_files_drops_the_override(store, settings) -> None:
    save(store, settings, {("tickets", "priority_overdue"): "Medium"}, actor="alice", now=AT)
    assert overrides.saved_values(store) == {("tickets", "priority_overdue"): "Medium"}
    changes, _ = save(store, settings, {("tickets", "priority_overdue"): "low"}, actor="bob",
                      now=AT + timedelta(hours=1))
    assert [(c.old, c.new) for c in changes] == [("Medium", "Low")]
    assert overrides.saved_values(store) == {}
    assert in_force(store, settings).tickets.priority_overdue == "Low"


def test_history_says_who_when_and_old_to_new_newest_first(store, settings) -> None:
    save(store, settings, {("policy", "grace_days"): "5"}, actor="alice", now=AT)
    later = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    save(store, settings, {("policy", "grace_days"): "7", ("tickets", "staff_note"): "off"},
         actor="bob", now=later)
    rows = overrides.history(store)
    assert [(c.actor, c.at, c.section, c.key, c.old, c.new) for c in rows] == [
        ("bob", later.replace(tzinfo=None), "tickets", "staff_note", "on", "off"),
        ("bob", later.replace(tzinfo=None), "policy", "grace_days", "5", "7"),
        ("alice", AT.replace(tzinfo=None), "policy", "grace_days", "3", "5"),
    ]
    assert overrides.history_count(store) == 3
    assert [c.actor for c in overrides.history(store, limit=1, offset=2)] == ["alice"]


def test_nothing_is_stored_when_one_value_is_bad(store, settings) -> None:
    changes, errors = save(store, settings, {("policy", "grace_days"): "5",
                                             ("tickets", "priority_overdue"): "Urgent",
                                             ("tickets", "block_when"): "always"},
                           actor="alice", now=AT)
    assert changes == []
    assert errors == {("tickets", "priority_overdue"): "expected one of Low, Medium, High, keep",
                      ("tickets", "block_when"): "expected one of suspended, overdue, never"}
    assert overrides.saved_values(store) == {}
    assert overrides.history_count(store) == 0


def test_changed_since_gives_what_an_older_form_showed(store, settings) -> None:
    seen = overrides.version(store)
    save(store, settings, {("policy", "grace_days"): "5"}, actor="alice", now=AT)
    save(store, settings, {("policy", "grace_days"): "6"}, actor="bob", now=AT)
    assert overrides.changed_since(store, seen) == {("policy", "grace_days"): "3"}
    assert overrides.changed_since(store, overrides.version(store)) == {}


# --- effective and LiveSettings --------------------------------------------------------------


def test_effective_ignores_a_key_unknown_to_this_version(settings) -> None:
    result = overrides.effective(settings, {("policy", "dropped_long_ago"): "1",
                                            ("webhook", "tolerance_seconds"): "60",
                                            ("tickets", "priority_vip"): "Low"})
    assert result.tickets.priority_vip == "Low"
    assert result.webhook == settings.webhook and result.policy == settings.policy


def test_a_saved_value_this_version_refuses_leaves_the_others_in_force(store, settings) -> None:
    with store.engine.begin() as conn:
        for key, value in (("grace_days", "999"), ("pending_grace_days", "9")):
            conn.execute(setting_override.insert().values(
                section="policy", key=key, value=value, updated_at=AT.replace(tzinfo=None),
                updated_by="alice"))
    result = in_force(store, settings)
    assert (result.policy.grace_days, result.policy.pending_grace_days) == (3, 9)


@dataclass
class Ticks:
    """A monotonic clock moved by hand."""

    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def test_live_settings_pick_a_change_saved_elsewhere_within_the_ttl(store, settings) -> None:
    other_process = Store(settings.bridge.database_url)
    ticks = Ticks()
    live = LiveSettings(settings, store, ttl=2.0, monotonic=ticks)
    elsewhere = LiveSettings(settings, other_process, ttl=2.0, monotonic=Ticks())
    try:
        assert live().policy.grace_days == 3
        save(other_process, elsewhere.base, {("policy", "grace_days"): "6"}, actor="bob", now=AT)
        elsewhere.reload()  # the saving process at once
        assert elsewhere().policy.grace_days == 6
        ticks.now += 1.9
        assert live().policy.grace_days == 3  # not looked at yet
        ticks.now += 0.1
        assert live().policy.grace_days == 6  # the ttl passed: the version moved
        assert live.base.policy.grace_days == 3  # the file's value is kept apart
    finally:
        other_process.dispose()


def test_live_settings_keep_what_is_in_force_when_the_database_fails(store, settings,
                                                                     monkeypatch) -> None:
    ticks = Ticks()
    live = LiveSettings(settings, store, ttl=2.0, monotonic=ticks)
    save(store, settings, {("policy", "grace_days"): "6"}, actor="alice", now=AT)
    assert live().policy.grace_days == 6

    def gone(_store: Store) -> int:
        raise sa.exc.OperationalError("SELECT max(id)", {}, Exception("server has gone away"))

    monkeypatch.setattr(overrides, "version", gone)
    ticks.now += 5
    assert live().policy.grace_days == 6


def test_engine_made_by_make_reconcile_engine_follows_a_saved_change(store, settings) -> None:
    base = settings.replace(whmcs={"url": "https://whmcs.example.com"})
    ticks = Ticks()
    live = LiveSettings(base, store, ttl=2.0, monotonic=ticks)
    engine = make_reconcile_engine(base, store, now=lambda: FIXED_NOW, live=live)
    assert engine is not None
    assert (engine.settings.policy.grace_days, engine.settings.tickets.priority_overdue) == (
        3, "Low")
    save(store, base, {("policy", "grace_days"): "1", ("tickets", "priority_overdue"): "Medium"},
         actor="alice", now=AT)
    ticks.now += 2
    assert (engine.settings.policy.grace_days, engine.settings.tickets.priority_overdue) == (
        1, "Medium")


def _suspended(client_id: int) -> CachedStanding:
    return CachedStanding(client_id, "suspended", 12, Decimal("189.80"),
                          (OverdueInvoice(1042, "1042", Decimal("89.90"), "2026-11-09"),
                           OverdueInvoice(1057, "1057", Decimal("99.90"), "2026-11-09")),
                          "$", "", "english", FIXED_NOW)


def test_webhook_gate_answers_with_a_saved_block_message(store, settings, clock) -> None:
    base = settings.replace(tickets={"billing_departments": "2"},
                            whmcs={"url": "https://billing.example.com"})
    app = create_app(base, store=store, clock=clock)
    ticks = Ticks()
    with app.app_context():
        runtime().live.monotonic = ticks
        runtime().live.reload()  # checked now, by the hand-moved clock
    store.put_standing(_suspended(12))
    question = {"clientId": "12", "departmentId": "1", "isAdmin": False}
    client = app.test_client()
    (before,) = post_signed(client, envelope("TicketOpenValidation", question)).json["errors"]
    assert before.startswith("Your account has overdue invoices (#1042, #1057; total $189.80)")

    save(store, base, {("tickets", "block_message_en"):
                       "Blocked: {invoices} ({total}, {days} days late). Pay at {link}"},
         actor="alice", now=AT)
    ticks.now += 2  # within the ttl of the process that answers
    (after,) = post_signed(client, envelope("TicketOpenValidation", question)).json["errors"]
    assert after == ("Blocked: #1042, #1057 ($189.80, 12 days late). Pay at "
                     "https://billing.example.com/viewinvoice.php?id=1042")


def test_a_configured_template_the_gate_cannot_fill_gives_the_default_message() -> None:
    from bridge.policy.gate import render_block_message

    # the file accepts {total:d} (only the page tries the template); the gate still answers
    message = render_block_message("Pay {total:d}", _suspended(12), "en",
                                   "https://billing.example.com")
    assert message.startswith("Your account has overdue invoices (#1042, #1057; total $189.80)")
    assert message.endswith("https://billing.example.com/viewinvoice.php?id=1042")
