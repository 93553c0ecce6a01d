"""How often one owner hears from tokenbot: the reminder DMs already sent to them (from the
notification table: the rows one message carries share its channel and ts, and the earliest
row's `sent_at` is when it went out), and today's DM, which a later run adds to (chat.update)
instead of sending another. The rules themselves are pure: `bot.domain.ladder.pace`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from bot.domain import ladder
from bot.enums import NotificationStatus, Step
from bot.models import Notification
from bot.services.ports import ReminderMessage

_NOT_REMINDERS = [str(step) for step in Step]  # the reminder steps are days: "14", "7", ...
_CHUNK = 900  # ids in one IN (...): SQLite allows 999 parameters


@dataclass(frozen=True, slots=True)
class SentDM:
    channel: str
    ts: str
    at: datetime  # when it was posted


@dataclass(frozen=True, slots=True)
class Addition:
    """Today's DM to an owner, to be redrawn with what falls due before tomorrow's."""

    channel: str
    ts: str
    message: ReminderMessage  # what it listed and what it gets now


def sent_dms(*, session: Session, recipients: Collection[str], since: datetime) -> dict[str, list[SentDM]]:
    """The reminder DMs posted to each of these owners after `since`, oldest first."""
    found: dict[str, list[SentDM]] = defaultdict(list)
    ids = sorted(set(recipients))
    posted = func.min(Notification.sent_at)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Notification.recipient, Notification.channel, Notification.message_ts, posted)
            .where(
                Notification.recipient.in_(ids[start : start + _CHUNK]),
                Notification.status == NotificationStatus.SENT,
                Notification.step.not_in(_NOT_REMINDERS),
                Notification.message_ts.is_not(None),
            )
            .group_by(Notification.recipient, Notification.channel, Notification.message_ts)
            .having(posted > since)
        )
        for recipient, channel, ts, at in rows:
            found[recipient].append(SentDM(channel, ts, _aware(at)))
    for dms in found.values():
        dms.sort(key=lambda dm: dm.at)
    return found


def todays_dm(*, session: Session, recipient: str, tz: str, now: datetime) -> SentDM | None:
    """The reminder DM this owner got today (their own day), if any."""
    dms = sent_dms(session=session, recipients=[recipient], since=now - timedelta(days=2))[recipient]
    today = ladder.local_day(now, tz)
    mine = [dm for dm in dms if ladder.local_day(dm.at, tz) == today]
    return mine[-1] if mine else None


def rows_of(session: Session, dm: SentDM) -> list[Notification]:
    """The sent rows a DM lists."""
    return list(
        session.execute(
            select(Notification)
            .where(
                Notification.channel == dm.channel,
                Notification.message_ts == dm.ts,
                Notification.status == NotificationStatus.SENT,
            )
            .order_by(Notification.id)
        ).scalars()
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
