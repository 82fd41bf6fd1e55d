"""Delinquency episodes (issue 19 item 1): ``episode``, with one open episode per client at
most (``uq_episode_open_client`` over ``open_client_id``, NULL once ended), and its actions
and payments.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "episode",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer, nullable=False),
        sa.Column("open_client_id", sa.Integer, nullable=True),
        sa.Column("opened_at", sa.DateTime, nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("amount", sa.Numeric(16, 2), nullable=False),
        sa.Column("currency_prefix", sa.String(16), nullable=False, server_default=""),
        sa.Column("currency_suffix", sa.String(16), nullable=False, server_default=""),
        sa.Column("tracked", sa.Text, nullable=False),
        sa.Column("standing", sa.String(16), nullable=False),
        sa.Column("recovered", sa.Numeric(16, 2), nullable=False, server_default="0"),
        sa.Column("written_off", sa.Numeric(16, 2), nullable=False, server_default="0"),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("ended_on", sa.Date, nullable=True),
        sa.Column("how", sa.String(16), nullable=True),
        sa.Column("days", sa.Integer, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("live", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("reason_note", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("open_client_id", name="uq_episode_open_client"),
    )
    op.create_index("ix_episode_client_opened", "episode", ["client_id", "opened_on"])
    op.create_index("ix_episode_ended_on", "episode", ["ended_on"])
    op.create_table(
        "episode_action",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("episode_id", BigId, nullable=False),
        sa.Column("client_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("ticket_id", sa.Integer, nullable=True),
        sa.Column("detail", sa.String(255), nullable=False, server_default=""),
    )
    op.create_index("ix_episode_action_episode", "episode_action", ["episode_id"])
    op.create_table(
        "episode_payment",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("episode_id", BigId, nullable=False),
        sa.Column("client_id", sa.Integer, nullable=False),
        sa.Column("invoice_id", sa.Integer, nullable=False),
        sa.Column("amount", sa.Numeric(16, 2), nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
    )
    op.create_index("ix_episode_payment_episode", "episode_payment", ["episode_id"])


def downgrade() -> None:
    op.drop_table("episode_payment")
    op.drop_table("episode_action")
    op.drop_table("episode")
