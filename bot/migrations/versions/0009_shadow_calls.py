"""api_call and audit_read: each token's calls per service and action, and how fresh the audit log
read is, for shadow enforcement (what narrowing would deny)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apicall",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("principal_id", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("token_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("service_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("action_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("approximate", sa.Boolean(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("first_seen", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "workspace", "principal_id", "token_id", "service_name", "action_name", name="uq_api_call"
        ),
    )
    op.create_table(
        "auditread",
        sa.Column("workspace", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("since", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("newest_event_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("workspace"),
    )


def downgrade() -> None:
    op.drop_table("auditread")
    op.drop_table("apicall")
