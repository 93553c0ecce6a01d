"""The post-narrowing message in place: re-rendered from the database after a decision about one
of its tokens (Restore scopes, Looks fine, or anything that settles it), as bot/slack/refresh.py
does for reminders; `refresh_reminder` hands narrowed messages over to `refresh_narrowed`."""

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
from bot.services import decisions, narrowing
from bot.slack import blocks
from bot.slack.blocks.narrowing import looks_fine_annotation, narrowed_message

logger = logging.getLogger(__name__)


def refresh_narrowed(
    client: WebClient, session: Session, policy: Policy, rows: Sequence[Notification], now: datetime
) -> bool:
    """Re-render the narrowed message these rows (one channel and ts) were sent in."""
    from bot.slack.refresh import annotation  # refresh hands over to this module: import late

    message, _ = narrowing.message_for(session=session, policy=policy, rows=list(rows), now=now)
    if message is None:
        return False
    notes: dict[str, blocks.Annotation] = {}
    for row in rows:
        decision = _about(session, row)
        if decision is None:
            continue
        if decision.action == decisions.ACCEPT and decision.status == decisions.APPLIED:
            when = decision.updated_at or decision.created_at
            notes[f"n{row.id}"] = looks_fine_annotation(_who(decision), f"{when:%d %b %H:%M} UTC")
        else:
            notes[f"n{row.id}"] = annotation(decision)
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


def _about(session: Session, row: Notification) -> Decision | None:
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


def _who(decision: Decision) -> str:
    return "tokenbot" if decision.actor_slack_id == "tokenbot" else f"<@{decision.actor_slack_id}>"
