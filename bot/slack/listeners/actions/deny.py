"""Deny (admins): refuse a request; the requester is told and may decide otherwise."""

from sqlmodel import Session

from bot.services import decisions
from bot.services.decisions import Actor, Outcome
from bot.slack.context import Deps


def decide(deps: Deps, session: Session, decision_id: int, actor: Actor) -> Outcome:
    return decisions.deny(session=session, actor=actor, decision_id=decision_id)
