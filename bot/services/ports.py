"""What services need from the outside world, as interfaces and plain data: Slack lookups and
message delivery. `bot/slack/` implements them; tests may too, at the network edge only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.domain.policy import Deadline
from bot.services.report import TokenView


@dataclass(frozen=True, slots=True)
class SlackUser:
    id: str
    tz: str
    deleted: bool = False
    is_bot: bool = False
    email: str | None = None  # the Slack profile's email (needs users:read.email)


class Directory(Protocol):
    def lookup_email(self, email: str) -> SlackUser | None:
        """The Slack user with this email, or None when Slack knows no active user by it."""
        ...

    def user_info(self, user_id: str) -> SlackUser | None:
        """The Slack user with this id (deleted ones included), or None when there is none."""
        ...

    def all_users(self) -> Iterator[SlackUser]:
        """Every Slack user of the workspace (deleted ones and bots included), page by page."""
        ...


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a reminder goes to: an owner's Slack user id, or the admins channel with the reason."""

    slack_id: str
    tz: str = "UTC"
    admins_channel: bool = False
    reason: str | None = None  # why the admins get it: "no owner", "not in Slack", ...


@dataclass(frozen=True, slots=True)
class ReminderItem:
    reference: str  # opaque: what the buttons carry ("n<notification id>"); see bot/slack/references.py
    view: TokenView
    deadline: Deadline
    step: str  # "14", "7", ... days before, or "escalation"
    note: str | None = None  # e.g. why the admins channel got it


@dataclass(frozen=True, slots=True)
class ReminderMessage:
    recipient: Recipient
    items: tuple[ReminderItem, ...]
    now: datetime
    escalation: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: str
    ts: str


class DeliveryError(Exception):
    """A message could not be delivered. kind: ratelimited, recipient_gone, no_channel, other."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.failed = 0  # reminders this failure left unsent


class ReminderSender(Protocol):
    def send(self, message: ReminderMessage) -> Delivery: ...

    def preview(self, message: ReminderMessage) -> str:
        """The message as readable text (for `tokenbot remind --dry-run`)."""
        ...


@dataclass
class RunSummary:
    planned: int = 0
    sent_messages: int = 0
    sent_notifications: int = 0
    failed: int = 0
    left_pending: int = 0
    escalations: int = 0
    held_for_quiet_hours: int = 0
    lookups_failed: int = 0  # owners Slack could not be asked about: planned again next run
    previews: list[str] = field(default_factory=list)
