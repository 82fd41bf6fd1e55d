"""Inbox, meta and standing cache.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(255), nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("client_id", sa.Integer, nullable=True),
        sa.Column("payload", LongText, nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("locked_until", sa.DateTime, nullable=True),
        sa.Column("locked_by", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("webhook_id", name="uq_inbox_webhook_id"),
        **TABLE_ARGS,
    )
    op.create_index("ix_inbox_state_next", "inbox", ["state", "next_attempt_at"])
    op.create_index("ix_inbox_client_id", "inbox", ["client_id"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        **TABLE_ARGS,
    )
    op.create_table(
        "standing",
        sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("standing", sa.String(16), nullable=False),
        sa.Column("overdue_days", sa.Integer, nullable=False, server_default="0"),
        sa.Column("overdue_total", sa.Numeric(16, 2), nullable=False, server_default="0"),
        sa.Column("invoices", sa.Text, nullable=False),
        sa.Column("currency_prefix", sa.String(16), nullable=False, server_default=""),
        sa.Column("currency_suffix", sa.String(16), nullable=False, server_default=""),
        sa.Column("language", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        **TABLE_ARGS,
    )


def downgrade() -> None:
    op.drop_table("standing")
    op.drop_table("meta")
    op.drop_index("ix_inbox_client_id", table_name="inbox")
    op.drop_index("ix_inbox_state_next", table_name="inbox")
    op.drop_table("inbox")
