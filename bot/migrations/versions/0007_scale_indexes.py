"""token: indexes for the admin answers over a whole estate (the nearest expiries in order;
every date a deadline is counted from, read without the wide rows)

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DEADLINE_DATES = [  # as bot.models.DEADLINE_DATES at this revision
    "gone_at",
    "last_used_on",
    "created_at",
    "first_seen_at",
    "observation_started_at",
    "enforcement_at",
    "expires_at",
    "autoscope_state",
    "workspace",
    "token_id",
]


def upgrade() -> None:
    op.create_index("ix_token_live_expiry", "token", ["gone_at", "expires_at", "workspace", "token_id"])
    op.create_index("ix_token_live_dates", "token", DEADLINE_DATES)


def downgrade() -> None:
    op.drop_index("ix_token_live_dates", table_name="token")
    op.drop_index("ix_token_live_expiry", table_name="token")
