"""The vocabulary of decisions: statuses, actions and roles as stored in `decision` rows, who
decides (`Actor`), which deadline a decision is about (`DeadlineRef`), what the person who clicked
is told (`Outcome`), and the locked token a decision is about (`Subject`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bot import mentions
from bot.domain.deadlines import Deadline
from bot.models import Principal, Token
from bot.services import inventory

# statuses
REQUESTED, APPROVED, APPLIED = "requested", "approved", "applied"
FAILED, DENIED, REFUSED = "failed", "denied", "refused"
# Claimed, its Databricks call under way (or its process died: `claims.settle` finds it).
IN_PROGRESS = "in_progress"
# actions
CONFIRM_SCOPES, ACCEPT, EXTEND, ROTATE, REVOKE = "confirm_scopes", "accept", "extend", "rotate", "revoke"
SNOOZE, NOT_MINE, ASSIGN_OWNER, RESTORE = "snooze", "not_mine", "assign_owner", "restore"
APPROVE, DENY = "approve", "deny"  # only refused attempts carry these; see approvals.approve()
# roles
OWNER, ADMIN, OTHER, TOKENBOT_ROLE = "owner", "admin", "other", "tokenbot"

EXTENSION_LIMIT_DAYS = 365
SNOOZE_FOR = timedelta(days=1)
STALE_REFERENCE = "stale_reference"
DENIED_BEFORE = "denied_before"
# Decisions that settle a deadline: reminders about it stop (see history.stops_reminders).
SETTLING_ACTIONS = frozenset({ACCEPT, CONFIRM_SCOPES, EXTEND, ROTATE, REVOKE, RESTORE})
APPROVABLE = frozenset({CONFIRM_SCOPES, RESTORE, EXTEND})
SLACK_USER_ID = re.compile(rf"^{mentions.SLACK_USER_ID}$")

GatewayFactory = inventory.GatewayFactory


@dataclass(frozen=True, slots=True)
class Actor:
    """Who clicked: a Slack user id, and whether the caller found them in the admins."""

    slack_id: str
    is_admin: bool = False


TOKENBOT = Actor(slack_id=mentions.TOKENBOT, is_admin=True)  # the bot's own follow-ups (rotations)


@dataclass(frozen=True, slots=True)
class DeadlineRef:
    """The deadline a decision is about, as the reminder showed it."""

    kind: str  # a DeadlineKind value
    due_at: datetime
    # The reference names a deadline tokenbot does not compute for the token now (moved, or made up):
    # the decision is refused as `stale_reference`.
    stale: bool = False

    @property
    def due_date(self) -> date:
        return self.due_at.date()

    @classmethod
    def of(cls, deadline: Deadline) -> DeadlineRef:
        return cls(kind=str(deadline.kind), due_at=deadline.due_at)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened, for the person who clicked; every outcome has its decision row."""

    status: str
    message: str  # plain words, ready to show
    action: str
    decision_id: int
    token_pk: int | None
    actor_slack_id: str
    decided_at: datetime
    parameters: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    duplicate_of: int | None = None  # the earlier decision that already did this

    @property
    def already_gone(self) -> bool:
        return bool(self.parameters.get("already_gone"))

    @property
    def dry_run(self) -> bool:
        return bool(self.parameters.get("dry_run"))

    @property
    def retryable(self) -> bool:
        """A Databricks failure: offering Retry makes sense."""
        return self.status == FAILED


@dataclass
class Subject:
    """A token a decision is about, locked, with its owner and the actor's role."""

    token: Token
    owner: Principal | None
    actor: Actor
    role: str


def deadline_parameters(deadline: DeadlineRef | None) -> dict[str, Any]:
    """How a decision row records the deadline it is about."""
    if deadline is None:
        return {}
    return {
        "deadline_kind": str(deadline.kind),
        "due_date": deadline.due_date.isoformat(),
        "due_at": deadline.due_at.isoformat(),
    }


def parse_time(text: str) -> datetime:
    """A moment a decision row's parameters hold (ISO 8601)."""
    return datetime.fromisoformat(text)
