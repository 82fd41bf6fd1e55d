"""The standing cache keeps the reasons behind the standing and the VIP decision, so the
panels vipgate shows inside WHMCS can explain them without asking WHMCS.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("standing") as batch:
        batch.add_column(sa.Column("standing_reasons", sa.Text, nullable=True))
        batch.add_column(sa.Column("vip_reasons", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("standing") as batch:
        batch.drop_column("vip_reasons")
        batch.drop_column("standing_reasons")
