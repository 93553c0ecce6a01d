"""The state of one notification row, shared by every kind of message that goes through the
notification table (reminders, escalations, after-narrowing messages): who is sending it, and
what became of it."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.models import Notification, NotificationStatus
from bot.services import recipients
from bot.services.ports import DeliveryError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # a row that failed this often is marked failed and no longer retried


def claim_id() -> str:
    """Who is sending: this host and process (so a dead one's claims can be released at once)."""
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claimant_is_dead_here(claimant: str) -> bool:
    """A `claim_id` of a process on this host that no longer exists."""
    host, _, rest = claimant.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _host() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _host() -> str:
    return socket.gethostname()[:20]  # the claim column holds 40 characters


def add_once(session: Session, row: Notification) -> bool:
    """Write a new row unless another run already wrote the same one (the unique key of DESIGN.md
    section 3): True when this run wrote it."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


def finish(session: Session, rows: list[Notification], status: str, **values) -> None:
    """The rows are done with: sent, skipped or failed for good."""
    session.execute(
        update(Notification)
        .where(Notification.id.in_([r.id for r in rows]))
        .values(status=status, claimed_by=None, attempts=Notification.attempts + 1, **values)
    )


def record_failure(session: Session, rows: list[Notification], error: DeliveryError, now: datetime) -> None:
    """A message did not go out: its rows wait for the next run (attempts counted, error kept),
    unless Slack says the recipient is gone, or they failed too often."""
    logger.warning(
        "message to %s not delivered (%s notification(s) kept for the next run): %s",
        rows[0].recipient,
        len(rows),
        error.message,
    )
    if error.kind == "recipient_gone":
        # Slack says the user is gone: forget the lookup now; the next run routes to the admins.
        recipients.forget_slack_user(
            session=session, slack_id=rows[0].recipient, reason=error.message, now=now
        )
        finish(session, rows, status=NotificationStatus.FAILED, error=error.message[:2000])
        return
    ids = [r.id for r in rows]
    # Back to pending for the next run, unless it has failed too often.
    session.execute(
        update(Notification)
        .where(Notification.id.in_(ids))
        .values(
            status=NotificationStatus.PENDING,
            claimed_by=None,
            attempts=Notification.attempts + 1,
            error=error.message[:2000],
        )
    )
    session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.attempts >= MAX_ATTEMPTS)
        .values(status=NotificationStatus.FAILED)
    )


def existing_keys(session: Session, pks: set[int]) -> set[tuple[int, str, date, str, str]]:
    """(token, deadline kind, due date, step, recipient) of every notification row of these
    tokens, read in slices that stay under the databases' bound on query parameters."""
    keys: set[tuple[int, str, date, str, str]] = set()
    pk_list = list(pks)
    for start in range(0, len(pk_list), 900):
        rows = session.execute(
            select(
                Notification.token_pk,
                Notification.deadline_kind,
                Notification.due_date,
                Notification.step,
                Notification.recipient,
            ).where(Notification.token_pk.in_(pk_list[start : start + 900]))
        )
        keys.update(tuple(row) for row in rows)
    return keys
