"""tokenconsumer: who used each token (client family, network); consumerread: how fresh the audit
log was at the last read; misusefinding: misuse signals, recorded and posted once

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_WHEN = bot.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "tokenconsumer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", _TEXT(length=100), nullable=False),
        sa.Column("token_id", _TEXT(length=100), nullable=False),
        sa.Column("client", _TEXT(length=100), nullable=False),
        sa.Column("agent", _TEXT(length=300), nullable=False),
        sa.Column("network", _TEXT(length=64), nullable=False),
        sa.Column("first_seen", _WHEN(timezone=True), nullable=False),
        sa.Column("last_seen", _WHEN(timezone=True), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace", "token_id", "client", "network", name="uq_token_consumer"),
    )
    op.create_table(
        "consumerread",
        sa.Column("workspace", _TEXT(length=100), nullable=False),
        sa.Column("read_at", _WHEN(timezone=True), nullable=True),
        sa.Column("through", _WHEN(timezone=True), nullable=True),
        sa.Column("attempted_at", _WHEN(timezone=True), nullable=True),
        sa.Column("error", _TEXT(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("workspace"),
    )
    op.create_table(
        "misusefinding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("workspace", _TEXT(length=100), nullable=False),
        sa.Column("token_id", _TEXT(length=100), nullable=False),
        sa.Column("kind", _TEXT(length=40), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("detected_at", _WHEN(timezone=True), nullable=False),
        sa.Column("status", _TEXT(length=20), nullable=False),
        sa.Column("claimed_by", _TEXT(length=200), nullable=True),
        sa.Column("claimed_at", _WHEN(timezone=True), nullable=True),
        sa.Column("channel", _TEXT(length=30), nullable=True),
        sa.Column("message_ts", _TEXT(length=40), nullable=True),
        sa.Column("posted_at", _WHEN(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", _TEXT(length=2000), nullable=True),
        sa.Column("acted_by", _TEXT(length=30), nullable=True),
        sa.Column("acted_at", _WHEN(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(op.f("ix_misusefinding_detected_at"), "misusefinding", ["detected_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_misusefinding_detected_at"), table_name="misusefinding")
    op.drop_table("misusefinding")
    op.drop_table("consumerread")
    op.drop_table("tokenconsumer")
