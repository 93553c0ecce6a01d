"""The Confirm scopes modal was submitted: check the choice, then apply it after the ack."""

from typing import Any

from sqlmodel import Session

from bot.services import decisions
from bot.services.decisions import Actor, Outcome
from bot.slack.context import Deps
from bot.slack.ids import Block
from bot.slack.listeners.views.values import chosen_scopes
from bot.slack.references import Resolved


def errors(body: dict[str, Any]) -> dict[str, str]:
    if chosen_scopes(body):
        return {}
    return {Block.SCOPES: "Choose at least one scope: a token with no scopes has full access."}


def decide(deps: Deps, body: dict[str, Any], session: Session, ref: Resolved, actor: Actor) -> Outcome:
    return decisions.confirm_scopes(
        session=session,
        gateway_for=deps.gateway_for,
        actor=actor,
        token_pk=ref.token_pk,
        scopes=chosen_scopes(body),
        dry_run=deps.settings.dry_run,
        deadline=ref.deadline,
    )
