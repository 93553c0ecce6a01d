"""Updating a message in place after a decision (`chat.update`): a reminder, or the message
after auto-scoping narrowed tokens (Restore scopes, Looks fine, or anything that settles it).

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
from bot.enums import ESCALATION_STEPS, Step
from bot.mentions import who
from bot.models import Decision, Notification, Token
from bot.services import decisions, narrowing, report
from bot.services.ports import Recipient, ReminderItem, ReminderMessage
from bot.slack import blocks
from bot.slack.blocks.history import VERBS
from bot.slack.blocks.narrowing import looks_fine_annotation, narrowed_message
from bot.slack.references import for_notification, referenced_narrowed

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
    if rows[0].step == Step.NARROWED:  # the message after auto-scoping narrowed a token
        return refresh_narrowed(client, session, policy, rows, now)
    token_pks = {row.token_pk for row in rows}
    # One read for live and gone tokens alike: a revoked token shows its last state beside its decision.
    read = report.token_views(session=session, policy=policy, now=now, token_pks=token_pks, include_gone=True)
    every = {view.pk: view for view in read}
    gone_query = select(Token.id).where(Token.id.in_(token_pks), Token.gone_at.is_not(None))
    gone = set(session.execute(gone_query).scalars())
    views = {pk: view for pk, view in every.items() if pk not in gone}
    latest = _latest_decisions(session, [row.token_pk for row in rows])
    items, notes = [], {}
    for row in rows:
        view = views.get(row.token_pk)
        deadline = view.evaluation.deadline(row.deadline_kind, row.due_date) if view else None
        reference = for_notification(row.id)
        decision = _about(latest.get(row.token_pk, ()), row)
        if view is None or deadline is None:
            if decision is None:
                continue  # gone or moved without a decision: nothing to show any more
            view = view or every.get(row.token_pk)  # gone: its last known state
            if view is None or not view.evaluation.deadlines:
                continue
            deadline = view.evaluation.deadlines[0]
        items.append(ReminderItem(reference, view, deadline, row.step, row.note, row.id))
        if decision is not None:
            notes[reference] = annotation(decision)
    if not items:
        return False
    recipient = Recipient(
        rows[0].recipient, tz="UTC", admins_channel=rows[0].recipient.startswith(("C", "G"))
    )
    escalation = any(i.step in ESCALATION_STEPS for i in items)
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
        .where(
            Decision.token_pk.in_(list(set(token_pks))),
            # A claim under way has no outcome to show yet (its record refreshes the message).
            Decision.status.not_in((decisions.REFUSED, decisions.IN_PROGRESS)),
        )
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
    actor = who(decision.actor_slack_id)
    when = decision.updated_at or decision.created_at
    stamp = f"{when:%d %b %H:%M} UTC" if when else ""
    dry = " (dry run: nothing changed in Databricks)" if (decision.parameters or {}).get("dry_run") else ""
    if decision.status == decisions.FAILED:
        return blocks.Annotation(
            f":warning: {verb} failed: {blocks.escape(decision.error or 'error')}", keep_buttons=True
        )
    if decision.status == decisions.REQUESTED:
        return blocks.Annotation(f":hourglass: {verb} requested by {actor}; waiting for an admin")
    if decision.status == decisions.DENIED:
        return blocks.Annotation(f":no_entry: {verb} denied by an admin", keep_buttons=True)
    keep = decision.action == decisions.SNOOZE
    return blocks.Annotation(f":white_check_mark: {verb} by {actor} · {stamp}{dry}", keep_buttons=keep)


# ---------------------------------------------------------------------------------------------
# the message after a narrowing


def refresh_narrowed(
    client: WebClient, session: Session, policy: Policy, rows: Sequence[Notification], now: datetime
) -> bool:
    """Re-render the narrowed message these rows (one channel and ts) were sent in."""
    message, _ = narrowing.message_for(session=session, policy=policy, rows=list(rows), now=now)
    if message is None:
        return False
    message = referenced_narrowed(message)
    notes: dict[str, blocks.Annotation] = {}
    for row in rows:
        decision = _about_narrowing(session, row)
        if decision is None:
            continue
        if decision.action == decisions.ACCEPT and decision.status == decisions.APPLIED:
            when = decision.updated_at or decision.created_at
            stamp = f"{when:%d %b %H:%M} UTC"
            notes[for_notification(row.id)] = looks_fine_annotation(who(decision.actor_slack_id), stamp)
        else:
            notes[for_notification(row.id)] = annotation(decision)
    text, built = narrowed_message(message, decided=notes)
    channel, ts = rows[0].channel, rows[0].message_ts
    try:
        client.chat_update(channel=channel, ts=ts, text=text, blocks=[b.to_dict() for b in built])
    except SlackApiError as error:
        logger.error(
            "could not update the narrowed message %s/%s: %s", channel, ts, error.response.get("error")
        )
        return False
    return True


def _about_narrowing(session: Session, row: Notification) -> Decision | None:
    """The newest decision since the message that settles or concerns its token's narrowing."""
    candidates = session.execute(
        select(Decision)
        .where(
            Decision.token_pk == row.token_pk,
            Decision.status != decisions.REFUSED,
            Decision.action.in_(narrowing.SETTLING | {decisions.ACCEPT}),
        )
        .order_by(Decision.id.desc())
    ).scalars()
    for decision in candidates:
        parameters = decision.parameters or {}
        if decision.action != decisions.ACCEPT:
            if row.created_at is None or decision.created_at is None or decision.created_at >= row.created_at:
                return decision
            continue
        if (
            parameters.get("deadline_kind") == narrowing.KIND
            and str(parameters.get("due_date", ""))[:10] == row.due_date.isoformat()
        ):
            return decision
    return None

