"""token.comment as TEXT: Databricks keeps comments longer than 2,000 characters, and a bounded
column made PostgreSQL refuse the whole sync of that workspace

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("token", schema=None) as batch_op:
        batch_op.alter_column(
            "comment",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=2000),
            type_=sa.Text(),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("token", schema=None) as batch_op:
        batch_op.alter_column(
            "comment",
            existing_type=sa.Text(),
            type_=sqlmodel.sql.sqltypes.AutoString(length=2000),
            existing_nullable=False,
        )
