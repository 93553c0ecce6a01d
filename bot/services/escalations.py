"""Telling the admins channel, once per token and deadline, about overdue tokens: past tokenbot's
policy deadline while enforcement is off (step `overdue`), or held back by a request to the
admins until its hold ran out (step `hold_ended`). The message carries a reminder's decision
buttons; it goes out through bot/services/outbox.py as soon as its rows are written."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.db import session_scope
from bot.models import Notification, NotificationStatus
from bot.services import notifications, outbox
from bot.services.overdue import Overdue
from bot.services.ports import Recipient, ReminderItem, ReminderMessage, ReminderSender

# How often the reminder run comes (bot/jobs/scheduler.py schedules it so). An escalation is due
# `policy.escalate_after_days` before its deadline; the last run before that moment sends it
# (`ladder.escalation_due`), so the admins never hear later than that, whatever the run times.
RUN_EVERY = timedelta(minutes=15)


def tell_admins(
    engine: Engine,
    sender: ReminderSender,
    admin_channel: str,
    candidates: list[Overdue],
    now: datetime,
    step: str,
    note: str,
) -> set[int] | None:
    """The tokens newly told about (none when all were told before), or None when a message
    could not be sent: then its rows are forgotten, and the next run writes and sends them again.
    Many tokens take several messages, each recording only the tokens it showed."""
    claim = f"enforcement-{uuid.uuid4().hex[:12]}"
    with session_scope(engine) as session:
        rows = _record_escalations(session, candidates, admin_channel, claim, now, step, note)
    if not rows:
        return set()
    about = {row.id: item for row, item in rows}

    def render(session: Session, claimed: list[Notification]) -> tuple[ReminderMessage, list[Notification]]:
        # What the admins hear about is what this run found overdue: nothing to evaluate again.
        items = tuple(
            ReminderItem.of(about[row.id].view, about[row.id].deadline, step, row.note, row.id)
            for row in claimed
        )
        return ReminderMessage(Recipient(admin_channel, admins_channel=True), items, now, escalation=True), []

    claimed = [row for row, _ in rows]
    while claimed:
        # A failure forgets the rows: the next enforcement run writes and sends them again.
        sent = outbox.send_claimed(
            engine,
            claimed,
            render=render,
            send=sender.send,
            now=now,
            skipped_because="",
            on_failure=outbox.FailureRule.FORGET,
        )
        if sent.error is not None:
            return None
        if not sent.held_back or not sent.notifications:
            break
        with session_scope(engine) as session:  # what the message could not show: the next one
            claimed = outbox.claim(
                session,
                recipient=admin_channel,
                run_id=claim,
                now=now,
                which=Notification.id.in_(list(about)) & (Notification.step == step),
            )
    return {item.view.pk for _, item in rows}


def _record_escalations(
    session: Session,
    candidates: list[Overdue],
    admin_channel: str,
    claim: str,
    now: datetime,
    step: str,
    note: str,
) -> list[tuple[Notification, Overdue]]:
    """One notification of `step` per token and deadline; those told before are skipped."""
    before = set(
        session.execute(
            select(Notification.token_pk, Notification.deadline_kind, Notification.due_date).where(
                Notification.token_pk.in_([item.view.pk for item in candidates]),
                Notification.step == step,
                Notification.recipient == admin_channel,
            )
        ).all()
    )
    written = []
    for item in candidates:
        if (item.view.pk, str(item.deadline.kind), item.deadline.due_at.date()) in before:
            continue
        row = Notification(
            token_pk=item.view.pk,
            deadline_kind=str(item.deadline.kind),
            due_date=item.deadline.due_at.date(),
            due_at=item.deadline.due_at,
            step=step,
            recipient=admin_channel,
            note=note,
            # claimed: the reminder runs leave it alone while this run sends it
            status=NotificationStatus.SENDING,
            claimed_by=claim,
            claimed_at=now,
            created_at=now,
        )
        if notifications.add_once(session, row):  # else another run escalated it just now
            written.append((row, item))
    return written
