"""Updating a reminder in place after a decision (`chat.update`).

The message is rebuilt from the database, not from the click's payload: the notifications that
share its channel and ts say which tokens it lists, and the decisions say what happened to each.
So a decision taken in a modal, by an admin elsewhere, or after a restart updates it the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlmodel import Session

from bot.domain.policy import Policy
from bot.models import Decision, Notification
from bot.services import decisions, report
from bot.services.ports import Recipient, ReminderItem, ReminderMessage
from bot.slack import blocks
from bot.slack.blocks.history import VERBS
from bot.slack.references import for_notification

logger = logging.getLogger(__name__)

TOKEN_WIDE = {decisions.REVOKE, decisions.NOT_MINE, decisions.ASSIGN_OWNER, decisions.ROTATE}


def refresh_reminder(
    client: WebClient, session: Session, policy: Policy, channel: str, ts: str, now: datetime
) -> bool:
    """Re-render the reminder at (channel, ts) with what has been decided; False if it is not one."""
    rows = list(
        session.execute(
            select(Notification)
            .where(Notification.channel == channel, Notification.message_ts == ts)
            .order_by(Notification.id)
        ).scalars()
    )
    if not rows:
        return False
    if rows[0].step == "narrowed":  # the message after auto-scoping narrowed a token
        from bot.slack.narrowing import refresh_narrowed

        return refresh_narrowed(client, session, policy, rows, now)
    views = {
        v.pk: v
        for v in report.token_views(
            session=session, policy=policy, now=now, token_pks={row.token_pk for row in rows}
        )
    }
    latest = _latest_decisions(session, [row.token_pk for row in rows])
    items, notes = [], {}
    for row in rows:
        view = views.get(row.token_pk)
        deadline = (
            next(
                (
                    d
                    for d in view.evaluation.deadlines
                    if str(d.kind) == row.deadline_kind and d.due_at.date() == row.due_date
                ),
                None,
            )
            if view
            else None
        )
        reference = for_notification(row.id)
        decision = _about(latest.get(row.token_pk, ()), row)
        if view is None or deadline is None:
            if decision is None:
                continue  # gone or moved without a decision: nothing to show any more
            view = view or _gone_view(session, policy, row, now)
            if view is None or not view.evaluation.deadlines:
                continue
            deadline = view.evaluation.deadlines[0]
        items.append(
            ReminderItem(reference=reference, view=view, deadline=deadline, step=row.step, note=row.note)
        )
        if decision is not None:
            notes[reference] = annotation(decision)
    if not items:
        return False
    recipient = Recipient(
        rows[0].recipient, tz="UTC", admins_channel=rows[0].recipient.startswith(("C", "G"))
    )
    escalation = any(i.step in ("escalation", "overdue", "hold_ended") for i in items)
    message = ReminderMessage(recipient, tuple(items), now, escalation=escalation)
    text, built = blocks.reminder_message(message, decided=notes)
    try:
        client.chat_update(channel=channel, ts=ts, text=text, blocks=[b.to_dict() for b in built])
    except SlackApiError as error:
        logger.error("could not update the reminder %s/%s: %s", channel, ts, error.response.get("error"))
        return False
    return True


def _latest_decisions(session: Session, token_pks: Sequence[int]) -> dict[int, list[Decision]]:
    found: dict[int, list[Decision]] = {}
    rows = session.execute(
        select(Decision)
        .where(Decision.token_pk.in_(list(set(token_pks))), Decision.status != decisions.REFUSED)
        .order_by(Decision.id.desc())
    ).scalars()
    for decision in rows:
        found.setdefault(decision.token_pk, []).append(decision)
    return found


def _about(candidates: Sequence[Decision], row: Notification) -> Decision | None:
    """The newest decision on this token that concerns this notification's deadline."""
    for decision in candidates:
        parameters = decision.parameters or {}
        if decision.action in TOKEN_WIDE:
            return decision
        if (
            parameters.get("deadline_kind") == row.deadline_kind
            and str(parameters.get("due_date", ""))[:10] == row.due_date.isoformat()
        ):
            return decision
    return None


def annotation(decision: Decision) -> blocks.Annotation:
    verb = VERBS.get(decision.action, decision.action.replace("_", " ").capitalize())
    who = f"<@{decision.actor_slack_id}>" if decision.actor_slack_id != "tokenbot" else "tokenbot"
    when = decision.updated_at or decision.created_at
    stamp = f"{when:%d %b %H:%M} UTC" if when else ""
    dry = " (dry run: nothing changed in Databricks)" if (decision.parameters or {}).get("dry_run") else ""
    if decision.status == decisions.FAILED:
        return blocks.Annotation(
            f":warning: {verb} failed: {blocks.escape(decision.error or 'error')}", keep_buttons=True
        )
    if decision.status == decisions.REQUESTED:
        return blocks.Annotation(f":hourglass: {verb} requested by {who}; waiting for an admin")
    if decision.status == decisions.DENIED:
        return blocks.Annotation(f":no_entry: {verb} denied by an admin", keep_buttons=True)
    keep = decision.action == decisions.SNOOZE
    return blocks.Annotation(f":white_check_mark: {verb} by {who} · {stamp}{dry}", keep_buttons=keep)


def _gone_view(session: Session, policy: Policy, row: Notification, now: datetime):
    """A revoked token is no longer live; show its last known state with the decision."""
    views = report.token_views(
        session=session, policy=policy, now=now, token_pks=[row.token_pk], include_gone=True
    )
    return views[0] if views else None
