"""jobrun: the latest run of each scheduled job (shared by replicas); digestpost: posted digests

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digestpost",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("posted_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("message_ts", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("summary", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_digestpost_posted_at"), "digestpost", ["posted_at"], unique=False)
    op.create_table(
        "jobrun",
        sa.Column("job", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("started_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("runner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("job"),
    )


def downgrade() -> None:
    op.drop_table("jobrun")
    op.drop_index(op.f("ix_digestpost_posted_at"), table_name="digestpost")
    op.drop_table("digestpost")
