"""The database tables (DESIGN.md section 3).

Tokens are never deleted: history is the point. Token *values* are never stored anywhere.
Times are stored as aware UTC on both databases (`UTCDateTime`); lists of scopes are JSON,
which SQLite and PostgreSQL both keep portably.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

from bot.enums import (
    ActorRole,
    DecisionAction,
    DecisionStatus,
    EventStatus,
    NotificationStatus,
    Step,
    WorkspaceStatus,
)

__all__ = [  # the stored values, re-exported next to the tables that store them
    "ActorRole",
    "DecisionAction",
    "DecisionStatus",
    "EventStatus",
    "NotificationStatus",
    "Step",
    "WorkspaceStatus",
]


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out; SQLite forgets time zones, PostgreSQL converts them."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use bot.clock.now()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _when(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _scopes() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Workspace(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=100)
    host: str = Field(max_length=500)
    status: str = Field(default=WorkspaceStatus.NEVER, max_length=20)  # WorkspaceStatus
    last_sync_at: datetime | None = _when()
    last_success_at: datetime | None = _when()
    last_error: str | None = Field(default=None, max_length=2000)
    max_token_lifetime_days: int | None = None
    token_count: int | None = None  # live tokens at the last good sync: the shrink guard's base


class Principal(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("workspace", "principal_id", name="uq_principal_workspace_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(foreign_key="workspace.name", max_length=100)
    principal_id: str = Field(max_length=100)  # the Databricks id (owner_id of a token)
    kind: str | None = Field(default=None, max_length=30)  # user / service_principal / None = unresolved
    email: str | None = Field(default=None, max_length=320, index=True)
    application_id: str | None = Field(default=None, max_length=100)
    display_name: str | None = Field(default=None, max_length=300)
    active: bool | None = None
    resolved_at: datetime | None = _when()
    slack_user_id: str | None = Field(default=None, max_length=30)
    slack_tz: str | None = Field(default=None, max_length=64)
    slack_checked_at: datetime | None = _when()
    slack_missing_reason: str | None = Field(default=None, max_length=100)
    owner_slack_id: str | None = Field(default=None, max_length=30)  # admin-assigned, service principals


DEADLINE_DATES = (  # bot.domain.policy counts every deadline from these (and the workspace, id to break ties)
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
)


class Token(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("workspace", "token_id", name="uq_token_workspace_id"),
        Index("ix_token_live_owner", "gone_at", "workspace", "owner_id"),
        # What the admin answers over a whole estate read (bot/services/windows.py): the nearest
        # expiries in order, and every date a deadline is counted from, without the wide rows.
        Index("ix_token_live_expiry", "gone_at", "expires_at", "workspace", "token_id"),
        Index("ix_token_live_dates", *DEADLINE_DATES),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(foreign_key="workspace.name", max_length=100)
    token_id: str = Field(max_length=100)
    owner_id: str | None = Field(default=None, max_length=100)
    created_by: str | None = Field(default=None, max_length=320)
    comment: str = Field(default="", sa_type=Text)  # Databricks sets no short limit on comments
    created_at: datetime | None = _when()
    expires_at: datetime | None = _when(index=True)
    last_used_on: datetime | None = _when()
    scopes: list[str] = _scopes()
    inferred_scopes: list[str] = _scopes()
    backfill_scopes: list[str] = _scopes()
    autoscope_state: str | None = Field(default=None, max_length=100)
    observation_started_at: datetime | None = _when()
    enforcement_at: datetime | None = _when()  # from an auto-scoping event; beats the derived date
    previous_scopes: list[str] = _scopes()  # scopes before the last narrowing
    narrowed_at: datetime | None = _when()
    first_seen_at: datetime | None = _when()
    last_seen_at: datetime | None = _when()
    gone_at: datetime | None = _when()
    gone_reason: str | None = Field(default=None, max_length=20)  # expired / revoked / unknown


class Notification(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint(
            "token_pk", "deadline_kind", "due_date", "step", "recipient", name="uq_notification_step"
        ),
        Index("ix_notification_status", "status", "recipient"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token_pk: int = Field(foreign_key="token.id")
    deadline_kind: str = Field(max_length=40)  # a DeadlineKind value
    due_date: date
    due_at: datetime | None = _when()  # the deadline's exact time; NULL on rows written before 0006
    step: str = Field(max_length=30)  # "14", "7", ... days before, or a `Step`
    recipient: str = Field(max_length=30)  # Slack user or channel id
    channel: str | None = Field(default=None, max_length=30)
    message_ts: str | None = Field(default=None, max_length=40)
    status: str = Field(default=NotificationStatus.PENDING, max_length=20)  # NotificationStatus
    note: str | None = Field(default=None, max_length=300)  # why the admins channel gets it
    claimed_by: str | None = Field(default=None, max_length=40)  # the run sending it now
    claimed_at: datetime | None = _when()
    attempts: int = 0
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime | None = _when()
    sent_at: datetime | None = _when()


class Decision(SQLModel, table=True):
    """Append-only: every attempt, refused ones included."""

    id: int | None = Field(default=None, primary_key=True)
    token_pk: int | None = Field(default=None, foreign_key="token.id", index=True)
    action: str = Field(max_length=30)  # DecisionAction
    actor_slack_id: str = Field(max_length=30)
    actor_role: str = Field(max_length=20)  # ActorRole
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=20, index=True)  # DecisionStatus
    error: str | None = Field(default=None, max_length=2000)
    approved_by: str | None = Field(default=None, max_length=30)
    idempotency_key: str | None = Field(
        default=None, sa_column=Column(String(200), unique=True, nullable=True)
    )
    created_at: datetime | None = _when()
    updated_at: datetime | None = _when()


class Exemption(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    token_pk: int = Field(foreign_key="token.id", index=True)
    deadline_kind: str = Field(max_length=40)
    until: datetime = Field(sa_type=UTCDateTime, nullable=False)
    reason: str = Field(default="", max_length=2000)
    requested_by: str = Field(max_length=30)
    approved_by: str | None = Field(default=None, max_length=30)
    created_at: datetime | None = _when()


class Event(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    source: str = Field(max_length=20)  # webhook / file
    kind: str = Field(max_length=40)
    workspace: str = Field(max_length=100)
    token_id: str = Field(max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime | None = _when()
    processed_at: datetime | None = _when()
    status: str | None = Field(default=None, max_length=20)  # EventStatus
    reason: str | None = Field(default=None, max_length=500)  # why it was rejected


class SlackRequest(SQLModel, table=True):
    """A Slack request that has effects, once: a retry or replay of it finds its key here."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    kind: str = Field(max_length=40)  # e.g. "command:digest"
    user_id: str = Field(max_length=40)
    received_at: datetime | None = _when(index=True)


class ApiUsage(SQLModel, table=True):
    """Observed API calls from the audit log, per principal (and token where it can be tied)."""

    __table_args__ = (
        UniqueConstraint("workspace", "principal_id", "token_id", "service_name", name="uq_api_usage"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(max_length=100)
    principal_id: str = Field(max_length=320)
    token_id: str = Field(default="", max_length=100)  # "" = attributed to the principal only
    service_name: str = Field(max_length=200)
    scope: str | None = Field(default=None, max_length=100)  # None: no scope known for the service
    approximate: bool = True
    first_seen: datetime | None = _when()
    last_seen: datetime | None = _when()
    calls: int = 0


class ApiCall(SQLModel, table=True):
    """The audit log's calls of a token (or, approximately, of its owner) per service and action over
    the lookback window, exactly as the last good audit read found them (bot/services/shadow.py): the
    evidence of what narrowing would deny. Each read replaces the workspace's rows."""

    __table_args__ = (
        UniqueConstraint(
            "workspace", "principal_id", "token_id", "service_name", "action_name", name="uq_api_call"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(max_length=100)
    principal_id: str = Field(max_length=320)
    token_id: str = Field(default="", max_length=100)  # "" = the owner's calls outside a token session
    service_name: str = Field(max_length=200)
    action_name: str = Field(default="", max_length=200)
    approximate: bool = True
    calls: int = 0
    first_seen: datetime | None = _when()
    last_seen: datetime | None = _when()


class AuditRead(SQLModel, table=True):
    """The last audit-log read of a workspace, good or failed: how far its evidence can be trusted."""

    workspace: str = Field(primary_key=True, max_length=100)
    since: datetime | None = _when()  # the lookback window of the last good read
    read_at: datetime | None = _when()  # the last good read
    newest_event_at: datetime | None = _when()  # the newest event that read found
    failed_at: datetime | None = _when()  # the last failed read
    error: str | None = Field(default=None, max_length=2000)


class JobRun(SQLModel, table=True):
    """The latest run of each scheduled job, shared by every replica (bot/jobs/lease.py): a replica
    starts a job only when nobody started it within the last half period, so each run happens once."""

    job: str = Field(primary_key=True, max_length=50)
    started_at: datetime | None = _when()
    finished_at: datetime | None = _when()
    status: str | None = Field(default=None, max_length=20)  # running / ok / failed
    runner: str | None = Field(default=None, max_length=200)  # host:pid of the replica that ran it
    error: str | None = Field(default=None, max_length=2000)


class DigestPost(SQLModel, table=True):
    """A digest posted to the digest channel: the next digest reports what happened since."""

    id: int | None = Field(default=None, primary_key=True)
    posted_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    channel: str = Field(max_length=30)
    message_ts: str | None = Field(default=None, max_length=40)
    summary: str = Field(default="", max_length=2000)


class TokenConsumer(SQLModel, table=True):
    """Who used a token (bot/services/consumers.py): one client family from one network (/24 or
    /64), over the lookback window, as the last audit read saw it."""

    __table_args__ = (
        UniqueConstraint("workspace", "token_id", "client", "network", name="uq_token_consumer"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace: str = Field(max_length=100)
    token_id: str = Field(max_length=100)
    client: str = Field(max_length=100)  # a family (`bot.domain.clients`) or an unknown agent, cut
    agent: str = Field(default="", max_length=300)  # one raw user agent behind it, cleaned and cut
    network: str = Field(max_length=64)
    first_seen: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_seen: datetime = Field(sa_type=UTCDateTime, nullable=False)
    calls: int = 0


class ConsumerRead(SQLModel, table=True):
    """The last read of a workspace's audit log for consumers (its own statement, apart from the
    usage read that `AuditRead` follows): how far tokenbot can speak of use."""

    workspace: str = Field(primary_key=True, max_length=100)
    read_at: datetime | None = _when()  # the last successful read
    through: datetime | None = _when()  # the newest audit event that read saw (None: none at all)
    attempted_at: datetime | None = _when()
    error: str | None = Field(default=None, max_length=2000)  # of the last attempt, if it failed


class MisuseFinding(SQLModel, table=True):
    """A misuse signal (bot/services/misuse.py): recorded once (`key`), posted to the admins
    channel once, then acknowledged or revoked by an admin."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(300), unique=True, nullable=False))
    workspace: str = Field(max_length=100)
    token_id: str = Field(max_length=100)
    kind: str = Field(max_length=40)  # bot.domain.misuse.MisuseKind
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    detected_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    status: str = Field(default="open", max_length=20)  # MisuseStatus
    claimed_by: str | None = Field(default=None, max_length=200)  # the run posting it now
    claimed_at: datetime | None = _when()
    channel: str | None = Field(default=None, max_length=30)
    message_ts: str | None = Field(default=None, max_length=40)
    posted_at: datetime | None = _when()
    attempts: int = 0
    error: str | None = Field(default=None, max_length=2000)
    acted_by: str | None = Field(default=None, max_length=30)
    acted_at: datetime | None = _when()
