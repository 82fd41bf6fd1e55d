"""The inbox's received and finished times to the microsecond on MariaDB/MySQL, whose
DATETIME dropped the fraction (SQLite kept it): received → applied is a matter of
milliseconds (docs/PERFORMANCE.md, "Events to applied"), and whole seconds hid it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = (("received_at", False), ("finished_at", True))


def _mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    if _mysql():
        for name, nullable in COLUMNS:
            op.alter_column("inbox", name, type_=mysql.DATETIME(fsp=6),
                            existing_type=sa.DateTime(), existing_nullable=nullable)


def downgrade() -> None:
    if _mysql():
        for name, nullable in COLUMNS:
            op.alter_column("inbox", name, type_=sa.DateTime(),
                            existing_type=mysql.DATETIME(fsp=6), existing_nullable=nullable)
