"""initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-23 05:03:02.132612
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apiusage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("principal_id", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("token_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("service_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("approximate", sa.Boolean(), nullable=False),
        sa.Column("first_seen", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace", "principal_id", "token_id", "service_name", name="uq_api_usage"),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("workspace", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("token_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("processed_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_table(
        "workspace",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("last_sync_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("max_token_lifetime_days", sa.Integer(), nullable=True),
        sa.Column("token_count", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "principal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("principal_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("application_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("resolved_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("slack_user_id", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("slack_tz", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("slack_checked_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("slack_missing_reason", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("owner_slack_id", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace"],
            ["workspace.name"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace", "principal_id", name="uq_principal_workspace_id"),
    )
    with op.batch_alter_table("principal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_principal_email"), ["email"], unique=False)

    op.create_table(
        "token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("token_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("owner_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_on", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("inferred_scopes", sa.JSON(), nullable=False),
        sa.Column("backfill_scopes", sa.JSON(), nullable=False),
        sa.Column("autoscope_state", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("observation_started_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("enforcement_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("previous_scopes", sa.JSON(), nullable=False),
        sa.Column("narrowed_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("gone_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("gone_reason", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace"],
            ["workspace.name"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace", "token_id", name="uq_token_workspace_id"),
    )
    with op.batch_alter_table("token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_token_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index("ix_token_live_owner", ["gone_at", "workspace", "owner_id"], unique=False)

    op.create_table(
        "decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_pk", sa.Integer(), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("actor_slack_id", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_pk"],
            ["token.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decision_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_decision_token_pk"), ["token_pk"], unique=False)

    op.create_table(
        "exemption",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_pk", sa.Integer(), nullable=False),
        sa.Column("deadline_kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("until", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_pk"],
            ["token.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("exemption", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exemption_token_pk"), ["token_pk"], unique=False)

    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_pk", sa.Integer(), nullable=False),
        sa.Column("deadline_kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("message_ts", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_pk"],
            ["token.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "token_pk", "deadline_kind", "due_date", "step", "recipient", name="uq_notification_step"
        ),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_status", ["status", "recipient"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_status")

    op.drop_table("notification")
    with op.batch_alter_table("exemption", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exemption_token_pk"))

    op.drop_table("exemption")
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_token_pk"))
        batch_op.drop_index(batch_op.f("ix_decision_status"))

    op.drop_table("decision")
    with op.batch_alter_table("token", schema=None) as batch_op:
        batch_op.drop_index("ix_token_live_owner")
        batch_op.drop_index(batch_op.f("ix_token_expires_at"))

    op.drop_table("token")
    with op.batch_alter_table("principal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_principal_email"))

    op.drop_table("principal")
    op.drop_table("workspace")
    op.drop_table("event")
    op.drop_table("apiusage")
