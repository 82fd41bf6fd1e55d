"""The dashboard's days closed at their end, and clients' names in the standing cache.

- ``daily_snapshot.closed_at``: when the worker closed the day (its figures are final); NULL
  while the day is open, or for a day vipgate was not running at the end of.
- ``standing.name``: the client's name as WHMCS has it (first and last name, company), read
  with the rest of the client; NULL until the engine or a resync reads the client again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("daily_snapshot") as batch:
        batch.add_column(sa.Column("closed_at", sa.DateTime, nullable=True))
    with op.batch_alter_table("standing") as batch:
        batch.add_column(sa.Column("name", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("standing") as batch:
        batch.drop_column("name")
    with op.batch_alter_table("daily_snapshot") as batch:
        batch.drop_column("closed_at")
