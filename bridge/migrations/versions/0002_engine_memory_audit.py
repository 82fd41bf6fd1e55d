"""The engine's memory (membership, managed tickets, promises), per-client leases, audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "membership",
        sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("pinned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("excluded", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("home_group_id", sa.Integer, nullable=True),
        sa.Column("last_group_id", sa.Integer, nullable=True),
        sa.Column("pending_group_id", sa.Integer, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        **TABLE_ARGS,
    )
    op.create_table(
        "managed_ticket",
        sa.Column("ticket_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("client_id", sa.Integer, nullable=False),
        sa.Column("original_priority", sa.String(16), nullable=True),
        sa.Column("managed_priority", sa.String(16), nullable=True),
        sa.Column("pending_priority", sa.String(16), nullable=True),
        sa.Column("note_key", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        **TABLE_ARGS,
    )
    op.create_index("ix_managed_ticket_client_id", "managed_ticket", ["client_id"])
    op.create_table(
        "promise",
        sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("until", sa.Date, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        **TABLE_ARGS,
    )
    op.create_table(
        "client_lease",
        sa.Column("client_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("locked_by", sa.String(64), nullable=True),
        sa.Column("locked_until", sa.DateTime, nullable=True),
        **TABLE_ARGS,
    )
    op.create_table(
        "audit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("client_id", sa.Integer, nullable=True),
        sa.Column("ticket_id", sa.Integer, nullable=True),
        sa.Column("before", sa.String(255), nullable=True),
        sa.Column("after", sa.String(255), nullable=True),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("event_id", sa.String(255), nullable=True),
        **TABLE_ARGS,
    )
    op.create_index("ix_audit_client_at", "audit", ["client_id", "at"])
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_at", table_name="audit")
    op.drop_index("ix_audit_client_at", table_name="audit")
    op.drop_table("audit")
    op.drop_table("client_lease")
    op.drop_table("promise")
    op.drop_index("ix_managed_ticket_client_id", table_name="managed_ticket")
    op.drop_table("managed_ticket")
    op.drop_table("membership")
