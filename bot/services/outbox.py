"""The one way a notification row becomes a message: claim, render, send, record.

Reminders, the message after a narrowing and the enforcement job's escalations all write
`notification` rows first (render, then deliver: STYLE.md 4) and send them through here:

- `claim` marks a recipient's pending rows `sending` under this run's claim, so two runs never
  send the same row; `release_stale_claims` gives a crashed run's rows back.
- `send_claimed` renders the claimed rows into one message (a row no longer worth it is marked
  `skipped`), sends it and records the outcome: `sent` with the message's channel and ts, or
  the failure, by the caller's `FailureRule`.
- `Dispatcher` sends to many recipients side by side and stops everyone on a lasting rate limit
  or at the end of a time budget.

The failure rule is the caller's choice, because the rows' next run differs: a reminder or a
narrowing message stays `pending` and the next reminder run retries it (`RETRY`); an enforcement
escalation is forgotten (`FORGET`) so the next enforcement run writes it again, since a pending
row of its step would otherwise be sent by the reminder run instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, delete, select, true, update
from sqlmodel import Session

from bot.db import session_scope
from bot.enums import NotificationStatus
from bot.models import Notification
from bot.services import notifications
from bot.services.ports import Delivery, DeliveryError

logger = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=10)

M = TypeVar("M")
# The message of some claimed rows (one recipient), and the rows no longer worth sending.
Render = Callable[[Session, list[Notification]], tuple[M | None, list[Notification]]]


class FailureRule(StrEnum):
    """What becomes of the rows of a message that could not be sent."""

    RETRY = "retry"  # back to pending, attempts and error kept (notifications.record_failure)
    FORGET = "forget"  # deleted: the job that wrote them writes them again on its next run


@dataclass
class Sent:
    """What one or more messages did: sent, or failed (with the error of the last failure)."""

    messages: int = 0
    notifications: int = 0
    failed: int = 0
    error: DeliveryError | None = None
    held_back: int = 0  # rows the message could not show: pending again, for the next message

    @property
    def rate_limited(self) -> bool:
        return self.error is not None and self.error.kind == "ratelimited"

    def add(self, other: Sent) -> None:
        self.messages += other.messages
        self.notifications += other.notifications
        self.failed += other.failed


def release_stale_claims(session: Session, now: datetime, which: ColumnElement[bool] | None = None) -> None:
    """Rows a crashed run was sending go back to pending: at once when that run was a process on
    this host that no longer exists, else after STALE_CLAIM (another replica may still be at it)."""
    which = true() if which is None else which
    sending = Notification.status == NotificationStatus.SENDING
    session.execute(
        update(Notification)
        .where(sending, which, Notification.claimed_at < now - STALE_CLAIM)
        .values(status=NotificationStatus.PENDING, claimed_by=None)
    )
    claimants = session.execute(select(Notification.claimed_by).where(sending, which).distinct()).scalars()
    dead = [claimant for claimant in claimants if claimant and notifications.claimant_is_dead_here(claimant)]
    if dead:
        session.execute(
            update(Notification)
            .where(sending, which, Notification.claimed_by.in_(dead))
            .values(status=NotificationStatus.PENDING, claimed_by=None)
        )


def count_unsent(engine: Engine) -> int:
    """Rows of any kind not sent yet (pending, or claimed by a run that is sending them)."""
    unsent = (NotificationStatus.PENDING, NotificationStatus.SENDING)
    with session_scope(engine) as session:
        return len(session.execute(select(Notification.id).where(Notification.status.in_(unsent))).all())


def waiting_recipients(session: Session, which: ColumnElement[bool]) -> list[str]:
    """Who has pending rows of this kind, in order."""
    return sorted(
        session.execute(
            select(Notification.recipient)
            .where(Notification.status == NotificationStatus.PENDING, which)
            .distinct()
        ).scalars()
    )


def claim(
    session: Session,
    *,
    recipient: str,
    run_id: str,
    now: datetime,
    which: ColumnElement[bool],
    limit: int | None = None,
) -> list[Notification]:
    """This recipient's pending rows of this kind (the oldest `limit` of them), now `sending`
    under `run_id`; a row another run claimed first is not among them."""
    pending = (Notification.recipient == recipient, Notification.status == NotificationStatus.PENDING, which)
    claimed = (Notification.claimed_by == run_id, Notification.status == NotificationStatus.SENDING)
    if limit is None:
        chosen: ColumnElement[bool] = Notification.recipient == recipient
        session.execute(
            update(Notification)
            .where(*pending)
            .values(status=NotificationStatus.SENDING, claimed_by=run_id, claimed_at=now)
        )
    else:
        oldest = select(Notification.id).where(*pending).order_by(Notification.id).limit(limit)
        ids = list(session.execute(oldest).scalars())
        if not ids:
            return []
        chosen = Notification.id.in_(ids)
        session.execute(
            update(Notification)
            .where(chosen, Notification.status == NotificationStatus.PENDING)
            .values(status=NotificationStatus.SENDING, claimed_by=run_id, claimed_at=now)
        )
    mine = select(Notification).where(*claimed, chosen).order_by(Notification.id)
    return list(session.execute(mine).scalars())


def send_claimed(
    engine: Engine,
    rows: list[Notification],
    *,
    render: Render,
    send: Callable[[Any], Delivery],
    now: datetime,
    skipped_because: str,
    on_failure: FailureRule = FailureRule.RETRY,
) -> Sent:
    """Render the claimed rows (one recipient) into one message, send it, record what happened.

    A failure to send (or a bug in the sender's rendering) is recorded by `on_failure` and
    returned, not raised: one recipient must not stop the others. The caller stops on
    `Sent.rate_limited`."""
    with session_scope(engine) as session:
        message, skipped = render(session, rows)
        if skipped:
            notifications.finish(session, skipped, status=NotificationStatus.SKIPPED, error=skipped_because)
    if message is None:
        return Sent()
    gone = {row.id for row in skipped}
    live = [row for row in rows if row.id not in gone]
    try:
        delivery = send(message)
    except DeliveryError as error:
        return _failed(engine, live, error, now, on_failure)
    except Exception as error:  # a bug in rendering the blocks must not stop the other recipients
        logger.exception("message to %s failed", live[0].recipient)
        crash = DeliveryError("other", f"{type(error).__name__}: {error}")
        return _failed(engine, live, crash, now, on_failure)
    # Only what the message showed is sent; the rest is pending again, for the next message.
    shown = [row for row in live if delivery.shown is None or row.id in delivery.shown]
    later = [row.id for row in live if delivery.shown is not None and row.id not in delivery.shown]
    with session_scope(engine) as session:
        notifications.finish(
            session,
            shown,
            status=NotificationStatus.SENT,
            channel=delivery.channel,
            message_ts=delivery.ts,
            sent_at=now,
        )
        if later:
            session.execute(
                update(Notification)
                .where(Notification.id.in_(later))
                .values(status=NotificationStatus.PENDING, claimed_by=None)
            )
    return Sent(messages=1, notifications=len(shown), held_back=len(later))


def _failed(
    engine: Engine, rows: list[Notification], error: DeliveryError, now: datetime, rule: FailureRule
) -> Sent:
    with session_scope(engine) as session:
        if rule is FailureRule.FORGET:
            logger.warning(
                "message to %s not delivered (%s notification(s) forgotten; the next run writes them "
                "again): %s",
                rows[0].recipient,
                len(rows),
                error.message,
            )
            session.execute(delete(Notification).where(Notification.id.in_([row.id for row in rows])))
        else:
            notifications.record_failure(session, rows, error, now)
    error.failed = len(rows)
    return Sent(failed=len(rows), error=error)


def deliver_to(
    engine: Engine,
    recipient: str,
    *,
    run_id: str,
    now: datetime,
    which: ColumnElement[bool],
    render: Render,
    send: Callable[[Any], Delivery],
    skipped_because: str,
    batch: int | None = None,
) -> Sent:
    """Claim and send this recipient's pending rows of this kind: all in one message, or (with
    `batch`) `batch` rows a message until none are left; what a message could not show goes in
    the next one. Stops at a rate limit."""
    total = Sent()
    while True:
        with session_scope(engine) as session:
            rows = claim(session, recipient=recipient, run_id=run_id, now=now, which=which, limit=batch)
        if not rows:
            return total  # nothing left, or another run took them
        sent = send_claimed(engine, rows, render=render, send=send, now=now, skipped_because=skipped_because)
        total.add(sent)
        if sent.rate_limited:
            total.error = sent.error
            return total
        if (batch is None and not sent.held_back) or (sent.held_back and not sent.notifications):
            return total  # all sent (or a message that shows nothing: the next run tries again)


class Dispatcher:
    """Delivers to one recipient at a time from worker threads, each recipient once per run;
    stops everyone on a rate limit that outlasted the client's retries, or at the end of the
    time budget. What is not sent stays pending for the next run."""

    def __init__(
        self, deliver: Callable[[str], Sent], *, name: str, time_budget: float | None = None
    ) -> None:
        self._deliver, self.name, self.time_budget = deliver, name, time_budget
        self.started = time.monotonic()
        self.stopped = threading.Event()
        self._attempted: set[str] = set()  # once per recipient per run, even after a failure
        self._lock = threading.Lock()

    def deliver(self, recipient: str) -> Sent:
        with self._lock:
            if self.stopped.is_set() or recipient in self._attempted:
                return Sent()
            self._attempted.add(recipient)
        if self.time_budget is not None and time.monotonic() - self.started > self.time_budget:
            self.stopped.set()
            logger.warning("%s run out of time: the rest stays pending for the next run", self.name)
            return Sent()
        sent = self._deliver(recipient)
        if sent.rate_limited:
            self.stopped.set()
            message = sent.error.message if sent.error else ""
            logger.warning("%s: Slack rate limit outlasted the run; the rest waits: %s", self.name, message)
        return sent

    def deliver_all(self, recipients: Sequence[str], workers: int) -> Sent:
        total = Sent()
        if workers == 1:
            for recipient in recipients:
                total.add(self.deliver(recipient))
            return total
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=self.name) as pool:
            for sent in pool.map(self.deliver, recipients):
                total.add(sent)
        return total
