"""Accept: the owner agrees to what will happen (e.g. the inferred scopes); reminders stop."""

from sqlmodel import Session

from bot.services import decisions
from bot.services.decisions import Actor, Outcome
from bot.slack.context import Deps
from bot.slack.listeners.common import UNKNOWN_DEADLINE, Click
from bot.slack.references import Resolved


def decide(deps: Deps, click: Click, session: Session, ref: Resolved, actor: Actor) -> Outcome:
    deadline = ref.deadline or UNKNOWN_DEADLINE
    return decisions.accept(session=session, actor=actor, token_pk=ref.token_pk, deadline=deadline)
