"""Every table of vipgate's own database, in the shape of the newest migration.

Alembic's migrations (``bridge/migrations``) create and change the schema; these objects
describe it for the statements of ``bridge.store``'s modules, and
tests/test_migrations_match.py checks that the two agree. Nothing outside ``bridge.store``,
the migrations and the tests imports this module: the rest of the code asks the store.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
# A moment kept to the microsecond on every database (MariaDB's DATETIME drops the fraction):
# how long an event waited between received and applied is a matter of milliseconds.
Moment = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

inbox = sa.Table(
    "inbox", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.String(255), nullable=False),
    sa.Column("hook", sa.String(64), nullable=False),
    sa.Column("client_id", sa.Integer, nullable=True),
    sa.Column("payload", LongText, nullable=False),
    sa.Column("occurred_at", sa.DateTime, nullable=False),
    sa.Column("received_at", Moment, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("locked_until", sa.DateTime, nullable=True),
    sa.Column("locked_by", sa.String(64), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("finished_at", Moment, nullable=True),
    sa.UniqueConstraint("webhook_id", name="uq_inbox_webhook_id"),
    sa.Index("ix_inbox_state_next", "state", "next_attempt_at"),
    sa.Index("ix_inbox_client_id", "client_id"),
)

meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

standing = sa.Table(
    "standing", metadata,
    sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("standing", sa.String(16), nullable=False),
    sa.Column("overdue_days", sa.Integer, nullable=False, server_default="0"),
    sa.Column("overdue_total", sa.Numeric(16, 2), nullable=False, server_default="0"),
    sa.Column("invoices", sa.Text, nullable=False),  # JSON list of overdue invoices
    sa.Column("currency_prefix", sa.String(16), nullable=False, server_default=""),
    sa.Column("currency_suffix", sa.String(16), nullable=False, server_default=""),
    sa.Column("language", sa.String(32), nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("billing_standing", sa.String(16), nullable=True),
    sa.Column("group_id", sa.Integer, nullable=True),
    sa.Column("in_vip", sa.Boolean, nullable=True),
    sa.Column("eligible", sa.Boolean, nullable=True),
    sa.Column("standing_reasons", LongText, nullable=True),  # JSON: bridge/store/reasons.py
    sa.Column("vip_reasons", LongText, nullable=True),  # JSON: bridge/store/reasons.py
    sa.Column("name", sa.String(255), nullable=True),  # as WHMCS has it; NULL: not read yet
)

membership = sa.Table(
    "membership", metadata,
    sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("excluded", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("home_group_id", sa.Integer, nullable=True),
    sa.Column("last_group_id", sa.Integer, nullable=True),
    sa.Column("pending_group_id", sa.Integer, nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("held_since", sa.DateTime, nullable=True),  # staff hold (migration 0005)
    sa.Column("held_by", sa.String(255), nullable=True),
)

managed_ticket = sa.Table(
    "managed_ticket", metadata,
    sa.Column("ticket_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("client_id", sa.Integer, nullable=False),
    sa.Column("original_priority", sa.String(16), nullable=True),
    sa.Column("managed_priority", sa.String(16), nullable=True),
    sa.Column("pending_priority", sa.String(16), nullable=True),
    sa.Column("note_key", sa.String(255), nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_managed_ticket_client_id", "client_id"),
)

promise = sa.Table(
    "promise", metadata,
    sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("until", sa.Date, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

client_lease = sa.Table(
    "client_lease", metadata,
    sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("locked_by", sa.String(64), nullable=True),
    sa.Column("locked_until", sa.DateTime, nullable=True),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("client_id", sa.Integer, nullable=True),
    sa.Column("ticket_id", sa.Integer, nullable=True),
    sa.Column("before", sa.String(255), nullable=True),
    sa.Column("after", sa.String(255), nullable=True),
    sa.Column("reasons", LongText, nullable=False),  # JSON: bridge/store/reasons.py
    sa.Column("event_id", sa.String(255), nullable=True),
    sa.Index("ix_audit_client_at", "client_id", "at"),
    sa.Index("ix_audit_at", "at"),
)

# --- the admin page's tables (bridge.store.accounts, .overrides, .snapshots) -----------

admin_user = sa.Table(
    "admin_user", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_login_at", sa.DateTime, nullable=True),
    # The admin page's language for this account (pt_BR, en); NULL: [bridge] language.
    sa.Column("language", sa.String(8), nullable=True),
)

# Failed logins per account name (known or not, so the answer never tells which names exist).
login_throttle = sa.Table(
    "login_throttle", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_failure_at", sa.DateTime, nullable=True),
    sa.Column("locked_until", sa.DateTime, nullable=True),
)

# Settings saved from the admin page: they override the file and the environment.
setting_override = sa.Table(
    "setting_override", metadata,
    sa.Column("section", sa.String(32), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
)

# Every change of a setting from the page (who, when, old -> new); the highest id is the
# settings version every process compares to know when to reload.
setting_change = sa.Table(
    "setting_change", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("section", sa.String(32), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    # The values in force before and after, as text (bridge.overrides always writes both)
    sa.Column("old", sa.Text, nullable=True),
    sa.Column("new", sa.Text, nullable=True),
)

# One row per day (WHMCS time zone): the delinquency figures of the dashboard.
daily_snapshot = sa.Table(
    "daily_snapshot", metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("taken_at", sa.DateTime, nullable=False),
    sa.Column("clients", sa.Integer, nullable=False),
    sa.Column("delinquent", sa.Integer, nullable=False),
    sa.Column("overdue", sa.Integer, nullable=False),
    sa.Column("suspended", sa.Integer, nullable=False),
    sa.Column("overdue_total", sa.Numeric(16, 2), nullable=False),
    sa.Column("vip_members", sa.Integer, nullable=False),
    sa.Column("vip_removed", sa.Integer, nullable=False),
    sa.Column("vip_restored", sa.Integer, nullable=False),
    sa.Column("aging", sa.Text, nullable=False),  # JSON {"1-7": n, ...}
    sa.Column("by_due_day", sa.Text, nullable=False),  # JSON {"1": n, ..., "31": n}
    sa.Column("closed_at", sa.DateTime, nullable=True),  # the day's end passed: final
)

# --- delinquency episodes (bridge.store.episodes; the pure rules: bridge.policy.episodes) ------

# One row per episode: a client's debt past the grace, from the day it began to the day it
# ended. ``open_client_id`` is the client id while the episode is open and NULL once it ended:
# its unique index lets a client have one open episode at most, on every database (NULLs do
# not collide), whichever worker, resync or backfill tries to open a second one.
episode = sa.Table(
    "episode", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("client_id", sa.Integer, nullable=False),
    sa.Column("open_client_id", sa.Integer, nullable=True),
    sa.Column("opened_at", sa.DateTime, nullable=False),  # naive UTC
    sa.Column("opened_on", sa.Date, nullable=False),  # WHMCS's day
    sa.Column("amount", sa.Numeric(16, 2), nullable=False),  # owed past the grace at opening
    sa.Column("currency_prefix", sa.String(16), nullable=False, server_default=""),
    sa.Column("currency_suffix", sa.String(16), nullable=False, server_default=""),
    sa.Column("tracked", sa.Text, nullable=False),  # JSON {invoice id: balance} still owed
    sa.Column("standing", sa.String(16), nullable=False),  # overdue | suspended (last seen)
    sa.Column("recovered", sa.Numeric(16, 2), nullable=False, server_default="0"),
    sa.Column("written_off", sa.Numeric(16, 2), nullable=False, server_default="0"),
    sa.Column("ended_at", sa.DateTime, nullable=True),
    sa.Column("ended_on", sa.Date, nullable=True),
    sa.Column("how", sa.String(16), nullable=True),  # bridge.policy.episodes.END_KINDS
    sa.Column("days", sa.Integer, nullable=True),  # days to recover (paid episodes)
    # backfill: reconstructed from WHMCS's history; live: opened by the engine or resync
    sa.Column("source", sa.String(16), nullable=False),
    # the engine has written to it since (a backfilled episode it carried on): the backfill
    # leaves such a row alone
    sa.Column("live", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("reason", sa.String(32), nullable=True),  # staff's reason tag (issue 19 item 3)
    sa.Column("reason_note", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("open_client_id", name="uq_episode_open_client"),
    sa.Index("ix_episode_client_opened", "client_id", "opened_on"),
    sa.Index("ix_episode_ended_on", "ended_on"),
)

episode_action = sa.Table(
    "episode_action", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("episode_id", BigId, nullable=False),
    sa.Column("client_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # bridge.policy.episodes.ACTION_KINDS
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("ticket_id", sa.Integer, nullable=True),
    sa.Column("detail", sa.String(255), nullable=False, server_default=""),
    sa.Index("ix_episode_action_episode", "episode_id"),
    sa.Index("ix_episode_action_kind", "kind", "episode_id", "at"),  # the recovery figures
)

episode_payment = sa.Table(
    "episode_payment", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("episode_id", BigId, nullable=False),
    sa.Column("client_id", sa.Integer, nullable=False),
    sa.Column("invoice_id", sa.Integer, nullable=False),
    sa.Column("amount", sa.Numeric(16, 2), nullable=False),
    sa.Column("paid_on", sa.Date, nullable=False),
    sa.Index("ix_episode_payment_episode", "episode_id"),
    sa.Index("ix_episode_payment_paid_on", "paid_on"),  # the recovery figures' range
)

# --- trust unlock (bridge.store.trust; the rules: bridge.policy.trust) -------------------------

# One row per unlock a client asked for from the client-area banner. ``open_episode_id`` is
# the episode's id while the unlock is pending or applied, NULL once it failed: its unique
# index lets an episode have one unlock at most, whichever request comes second.
trust_unlock = sa.Table(
    "trust_unlock", metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("client_id", sa.Integer, nullable=False),
    sa.Column("episode_id", BigId, nullable=False),
    sa.Column("open_episode_id", BigId, nullable=True),
    sa.Column("unlocked_at", sa.DateTime, nullable=False),  # naive UTC
    sa.Column("unlocked_on", sa.Date, nullable=False),  # WHMCS's day (the yearly limit)
    sa.Column("until", sa.Date, nullable=False),  # unlocked through this day
    # comma-separated ids of the services vipgate set the override on (and must lift)
    sa.Column("service_ids", sa.String(255), nullable=False, server_default=""),
    sa.Column("state", sa.String(16), nullable=False),  # pending | applied | failed
    sa.Column("cleared_at", sa.DateTime, nullable=True),  # the override lifted (or let be)
    sa.Column("outcome", sa.String(16), nullable=True),  # paid | expired | ended
    sa.UniqueConstraint("open_episode_id", name="uq_trust_unlock_episode"),
    sa.Index("ix_trust_unlock_client", "client_id", "unlocked_on"),
    sa.Index("ix_trust_unlock_state", "state", "cleared_at"),
)
