"""The admin page: accounts, login throttling, settings saved from the page and their history,
daily delinquency snapshots; the standing cache keeps what the VIP decision saw.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE_ARGS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    with op.batch_alter_table("standing") as batch:
        batch.add_column(sa.Column("billing_standing", sa.String(16), nullable=True))
        batch.add_column(sa.Column("group_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("in_vip", sa.Boolean, nullable=True))
        batch.add_column(sa.Column("eligible", sa.Boolean, nullable=True))
    op.create_table(
        "admin_user",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_login_at", sa.DateTime, nullable=True),
        **TABLE_ARGS,
    )
    op.create_table(
        "login_throttle",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_failure_at", sa.DateTime, nullable=True),
        sa.Column("locked_until", sa.DateTime, nullable=True),
        **TABLE_ARGS,
    )
    op.create_table(
        "setting_override",
        sa.Column("section", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        **TABLE_ARGS,
    )
    op.create_table(
        "setting_change",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("section", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("old", sa.Text, nullable=True),
        sa.Column("new", sa.Text, nullable=True),
        **TABLE_ARGS,
    )
    op.create_table(
        "daily_snapshot",
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
        sa.Column("aging", sa.Text, nullable=False),
        sa.Column("by_due_day", sa.Text, nullable=False),
        **TABLE_ARGS,
    )


def downgrade() -> None:
    for table in ("daily_snapshot", "setting_change", "setting_override", "login_throttle",
                  "admin_user"):
        op.drop_table(table)
    with op.batch_alter_table("standing") as batch:
        for column in ("eligible", "in_vip", "group_id", "billing_standing"):
            batch.drop_column(column)
