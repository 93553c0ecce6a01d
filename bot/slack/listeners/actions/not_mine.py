"""Not mine: the token goes to the admins channel, where an admin picks its owner."""

from sqlmodel import Session

from bot.services import decisions
from bot.services.decisions import Actor, Outcome
from bot.slack.context import Deps
from bot.slack.listeners.common import Click
from bot.slack.references import Resolved


def decide(deps: Deps, click: Click, session: Session, ref: Resolved, actor: Actor) -> Outcome:
    return decisions.not_mine(session=session, actor=actor, token_pk=ref.token_pk, deadline=ref.deadline)
