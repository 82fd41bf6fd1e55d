"""Trust unlock (issue 19 item 5): ``trust_unlock``, one unlock per episode at most
(``uq_trust_unlock_episode`` over ``open_episode_id``, NULL once an unlock failed).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "trust_unlock",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer, nullable=False),
        sa.Column("episode_id", BigId, nullable=False),
        sa.Column("open_episode_id", BigId, nullable=True),
        sa.Column("unlocked_at", sa.DateTime, nullable=False),
        sa.Column("unlocked_on", sa.Date, nullable=False),
        sa.Column("until", sa.Date, nullable=False),
        sa.Column("service_ids", sa.String(255), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cleared_at", sa.DateTime, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.UniqueConstraint("open_episode_id", name="uq_trust_unlock_episode"),
    )
    op.create_index("ix_trust_unlock_client", "trust_unlock", ["client_id", "unlocked_on"])
    op.create_index("ix_trust_unlock_state", "trust_unlock", ["state", "cleared_at"])


def downgrade() -> None:
    op.drop_table("trust_unlock")
