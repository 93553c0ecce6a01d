"""The fixed values stored in the tables' text columns (bot/models.py), as `StrEnum`s.

They live apart from the table classes so that code which must not touch the database (the
Slack block builders, the domain) can still name them. Each value equals the string stored
before these enums existed, so stored rows and old code read the same: `Step.NARROWED ==
"narrowed"`.
"""

from __future__ import annotations

from enum import StrEnum


class NotificationStatus(StrEnum):
    """`Notification.status`: where a message about a deadline is in its delivery."""

    PENDING = "pending"  # written, waiting for a run to send it
    SENDING = "sending"  # claimed by a run (`claimed_by`) that is sending it now
    SENT = "sent"
    FAILED = "failed"  # for good: the recipient is gone, or it failed too often
    SKIPPED = "skipped"  # no longer due when its turn came (decided, gone or moved)


class Step(StrEnum):
    """`Notification.step`, apart from the reminder steps, which are days before the deadline
    ("14", "7", ...)."""

    ESCALATION = "escalation"  # the admins channel hears of an undecided deadline
    NARROWED = "narrowed"  # the message after auto-scoping narrowed a token
    OVERDUE = "overdue"  # past tokenbot's policy deadline while enforcement is off
    HOLD_ENDED = "hold_ended"  # a request to the admins held enforcement back for too long


ESCALATION_STEPS = frozenset({Step.ESCALATION, Step.OVERDUE, Step.HOLD_ENDED})  # to the admins channel


class DecisionStatus(StrEnum):
    """`Decision.status`."""

    REQUESTED = "requested"
    APPROVED = "approved"
    APPLIED = "applied"
    FAILED = "failed"
    DENIED = "denied"
    REFUSED = "refused"
    IN_PROGRESS = "in_progress"  # claimed, its Databricks call under way


class DecisionAction(StrEnum):
    """`Decision.action`."""

    CONFIRM_SCOPES = "confirm_scopes"
    ACCEPT = "accept"
    EXTEND = "extend"
    ROTATE = "rotate"
    REVOKE = "revoke"
    SNOOZE = "snooze"
    NOT_MINE = "not_mine"
    ASSIGN_OWNER = "assign_owner"
    RESTORE = "restore"
    APPROVE = "approve"  # only refused attempts carry these two
    DENY = "deny"
    ACKNOWLEDGE = "acknowledge"  # an admin closed a misuse finding (bot/services/misuse.py)


class ActorRole(StrEnum):
    """`Decision.actor_role`."""

    OWNER = "owner"
    ADMIN = "admin"
    OTHER = "other"
    TOKENBOT = "tokenbot"


class EventStatus(StrEnum):
    """`Event.status` of an auto-scoping event (bot/services/events.py)."""

    PENDING = "pending"  # waits for Databricks' confirmation
    APPLIED = "applied"
    REJECTED = "rejected"  # Databricks contradicts it


class WorkspaceStatus(StrEnum):
    """`Workspace.status`: how its last sync went."""

    NEVER = "never"  # not synced yet
    OK = "ok"
    STALE = "stale"  # the last sync failed
    HELD = "held"  # the last listing looked suspicious and was not applied


class MisuseStatus(StrEnum):
    """`MisuseFinding.status`."""

    OPEN = "open"  # recorded; posted or waiting to be
    ACKNOWLEDGED = "acknowledged"  # an admin looked and let it be
    REVOKED = "revoked"  # an admin revoked the token from the finding
