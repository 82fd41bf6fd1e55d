"""The standing cache's reasons as MEDIUMTEXT on MariaDB/MySQL: they are now kept as messages
with their values (JSON, several times the size of the English sentences they replace), and a
client with a hundred overdue invoices would pass TEXT's 64 KB. SQLite's TEXT has no such
limit: nothing changes there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = ("standing_reasons", "vip_reasons")


def upgrade() -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for column in COLUMNS:
        op.alter_column("standing", column, type_=mysql.MEDIUMTEXT(), existing_type=sa.Text(),
                        existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for column in COLUMNS:
        op.alter_column("standing", column, type_=sa.Text(), existing_type=mysql.MEDIUMTEXT(),
                        existing_nullable=True)
