"""Revoke: Slack already asked "are you sure?" (the button's confirm dialog); DELETE the token."""

from urllib.parse import unquote

from sqlmodel import Session

from bot.services import decisions
from bot.services.decisions import Actor, Outcome
from bot.slack.blocks.commands import REASON_BLOCK_PREFIX
from bot.slack.context import Deps
from bot.slack.listeners.common import Click
from bot.slack.references import Resolved


def decide(deps: Deps, click: Click, session: Session, ref: Resolved, actor: Actor) -> Outcome:
    return decisions.revoke(
        session=session,
        gateway_for=deps.gateway_for,
        actor=actor,
        token_pk=ref.token_pk,
        reason=_typed_reason(click) or "revoked from Slack",
        dry_run=deps.settings.dry_run,
        deadline=ref.deadline,
    )


def _typed_reason(click: Click) -> str:
    """`/tokens revoke <id> <reason>`: the admin's reason, carried by the confirmation's block id."""
    if not click.block_id.startswith(REASON_BLOCK_PREFIX):
        return ""
    return unquote(click.block_id.removeprefix(REASON_BLOCK_PREFIX))
