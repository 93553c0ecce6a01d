"""Approve (admins): apply a request that needed an admin, and close the approval message."""

from sqlmodel import Session

from bot.services import decisions
from bot.services.decisions import Actor, Outcome
from bot.slack.context import Deps


def decide(deps: Deps, session: Session, decision_id: int, actor: Actor) -> Outcome:
    return decisions.approve(
        session=session,
        gateway_for=deps.gateway_for,
        actor=actor,
        decision_id=decision_id,
        dry_run=deps.settings.dry_run,
    )
