"""What services need from the outside world, as interfaces and plain data: Slack lookups,
message delivery, clocks. Every port of the services is declared here; `bot/slack/` (and
bot/services/clocks.py for Databricks' clock) implements them; tests may too, at the network
edge only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.domain.deadlines import Deadline
from bot.services.report import TokenView

if TYPE_CHECKING:  # the messages these ports carry are the services' own data
    from bot.services.digest import Digest
    from bot.services.enforcement import Enforced, EnforcementReport, HeldReport
    from bot.services.narrowing import NarrowedMessage
    from bot.services.pacing import Addition


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
    # Opaque: what the buttons carry. Only the Slack layer makes it (bot/slack/references.py):
    # services leave it empty and give the `notification_id` the item was sent for.
    reference: str
    view: TokenView
    deadline: Deadline
    step: str  # "14", "7", ... days before, or a `bot.enums.Step`
    note: str | None = None  # e.g. why the admins channel got it
    notification_id: int | None = None  # None in a preview, or outside a reminder (/tokens)

    @classmethod
    def of(
        cls, view: TokenView, deadline: Deadline, step: str, note: str | None, notification_id: int | None
    ) -> ReminderItem:
        """An item as a service makes it: no reference yet."""
        return cls("", view, deadline, step, note, notification_id)


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
    # The notification ids the message showed, when it could not show them all (Slack's limits):
    # only those are recorded as sent; the rest go out in the next message. None: all of them.
    shown: frozenset[int] | None = None


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

    def add_to(self, addition: Addition) -> Delivery:
        """Redraw today's DM (`bot.services.pacing.Addition`) with what is added to it."""
        ...

    def preview(self, message: ReminderMessage) -> str:
        """The message as readable text (for `tokenbot remind --dry-run`)."""
        ...


class NarrowedSender(Protocol):
    """The message after auto-scoping narrowed tokens (bot/services/narrowing.py)."""

    def send_narrowed(self, message: NarrowedMessage) -> Delivery: ...

    def preview_narrowed(self, message: NarrowedMessage) -> str: ...


class EnforcementNotifier(Protocol):
    """What the enforcement job tells (bot/services/enforcement.py)."""

    def owner_revoked(self, owner_slack_id: str, items: Sequence[Enforced]) -> Delivery:
        """Tell an owner which of their tokens were revoked, and by which rule."""
        ...

    def admins_report(self, channel: str, report: EnforcementReport) -> Delivery:
        """Tell the admins channel what a run did (revoked, failed)."""
        ...

    def admins_held(self, channel: str, report: HeldReport) -> Delivery:
        """Tell the admins channel that a guard stopped the run, why, and what it held back."""
        ...


class DigestPoster(Protocol):
    def post(self, channel: str, digest: Digest, *, chart: bool) -> Delivery:
        """Post the digest (and its chart when asked and there is something to draw)."""
        ...


class TimeSource(Protocol):
    """A service whose answers carry its clock (the HTTP `Date` header)."""

    name: str

    def server_time(self) -> datetime: ...


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
