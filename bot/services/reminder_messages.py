"""The reminder message a recipient's pending notification rows make now (their tokens
evaluated again: a row whose deadline moved or went is skipped), and, for an owner who already had
today's DM, the same message as an addition to it (one DM a day: bot/services/pacing.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlmodel import Session

from bot.domain.policy import Policy
from bot.models import Notification, Step
from bot.services import pacing, recipients, report
from bot.services.ports import Recipient, ReminderItem, ReminderMessage


def message_for(
    session: Session,
    policy: Policy,
    rows: list[Notification],
    recipient: str,
    admin_channel: str | None,
    now: datetime,
) -> tuple[ReminderMessage | None, list[Notification]]:
    views = {
        v.pk: v
        for v in report.token_views(
            session=session, policy=policy, now=now, token_pks={row.token_pk for row in rows}
        )
    }
    items, skipped = [], []
    for row in rows:
        view = views.get(row.token_pk)
        deadline = view.evaluation.deadline(row.deadline_kind, row.due_date) if view else None
        if deadline is None:
            skipped.append(row)
            continue
        items.append(ReminderItem.of(view, deadline, row.step, row.note, row.id))
    if not items:
        return None, skipped
    is_channel = recipient == admin_channel
    target = Recipient(
        recipient, tz=recipients.tz_of(session=session, slack_id=recipient), admins_channel=is_channel
    )
    items.sort(key=lambda item: (item.deadline.due_at, item.view.workspace, item.view.token_id))
    return ReminderMessage(
        target, tuple(items), now, escalation=any(i.step == Step.ESCALATION for i in items)
    ), skipped


def added_to_today(
    session: Session, policy: Policy, message: ReminderMessage, now: datetime
) -> pacing.Addition | None:
    """One DM a day: when the owner already had today's, what is sent now is added to it (the
    message is redrawn with what it listed and what is new) instead of posted again. A crash after
    the update and before the rows are recorded makes the next run redraw it the same way."""
    recipient = message.recipient
    today = pacing.todays_dm(session=session, recipient=recipient.slack_id, tz=recipient.tz, now=now)
    if today is None:
        return None
    earlier, _ = message_for(
        session, policy, pacing.rows_of(session, today), message.recipient.slack_id, None, now
    )
    new_ids = {item.notification_id for item in message.items}
    kept = tuple(item for item in (earlier.items if earlier else ()) if item.notification_id not in new_ids)
    return pacing.Addition(today.channel, today.ts, replace(message, items=kept + message.items))
