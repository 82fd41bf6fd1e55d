"""The engine's reasons (the standing cache's and the audit log's) as MEDIUMTEXT on
MariaDB/MySQL: they are now kept as messages with their values (JSON, several times the size
of the English sentences they replace), and a client with a few hundred overdue invoices
would pass TEXT's 64 KB. SQLite's TEXT has no such
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

COLUMNS = (("standing", "standing_reasons", True), ("standing", "vip_reasons", True),
           ("audit", "reasons", False))  # (table, column, nullable)


def upgrade() -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, type_=mysql.MEDIUMTEXT(), existing_type=sa.Text(),
                        existing_nullable=nullable)


def downgrade() -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, type_=sa.Text(), existing_type=mysql.MEDIUMTEXT(),
                        existing_nullable=nullable)
