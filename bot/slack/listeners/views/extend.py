"""The Extend modal was submitted: days from 1 to 365 and a reason; apply after the ack."""

from typing import Any

from sqlmodel import Session

from bot.services import decisions
from bot.services.decisions import Actor, Outcome
from bot.slack.blocks import modals
from bot.slack.context import Deps
from bot.slack.ids import Block
from bot.slack.listeners.common import UNKNOWN_DEADLINE
from bot.slack.listeners.views.values import text
from bot.slack.references import Resolved

MAX_DAYS = 365


def _days_and_reason(body: dict[str, Any]) -> tuple[str, str]:
    return text(body, Block.DAYS, modals.DAYS_ACTION), text(body, Block.REASON, modals.REASON_ACTION)


def errors(body: dict[str, Any]) -> dict[str, str]:
    days_text, reason = _days_and_reason(body)
    found = {}
    if not (days_text.isascii() and days_text.isdigit()) or not 1 <= int(days_text) <= MAX_DAYS:
        found[Block.DAYS] = f"A whole number of days from 1 to {MAX_DAYS}."
    if not reason:
        found[Block.REASON] = "Say why: the admins see it."
    return found


def decide(deps: Deps, body: dict[str, Any], session: Session, ref: Resolved, actor: Actor) -> Outcome:
    days_text, reason = _days_and_reason(body)
    return decisions.extend(
        session=session,
        gateway_for=deps.gateway_for,
        actor=actor,
        token_pk=ref.token_pk,
        deadline=ref.deadline or UNKNOWN_DEADLINE,
        days=int(days_text),
        reason=reason,
        policy=deps.settings.policy,
        secret_bindings=deps.settings.secret_bindings,
        dry_run=deps.settings.dry_run,
    )
