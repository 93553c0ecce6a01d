"""event: status and reason (checked against Databricks); slackrequest: Slack requests run once

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    op.execute("UPDATE event SET status = 'applied' WHERE processed_at IS NOT NULL")
    op.execute("UPDATE event SET status = 'pending' WHERE processed_at IS NULL")
    op.create_table(
        "slackrequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("received_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(op.f("ix_slackrequest_received_at"), "slackrequest", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_slackrequest_received_at"), table_name="slackrequest")
    op.drop_table("slackrequest")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("status")
