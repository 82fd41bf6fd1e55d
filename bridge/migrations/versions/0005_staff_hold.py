"""A staff hold: when staff put a client into VIP while it owes, vipgate keeps it there (a
staff decision, respected) until the client is paid up; ``held_since`` says since when and
``held_by`` who (the WHMCS admin, when WHMCS said).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("membership") as batch:
        batch.add_column(sa.Column("held_since", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("held_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("membership") as batch:
        batch.drop_column("held_by")
        batch.drop_column("held_since")
