"""Looks fine: after auto-scoping narrowed a token, its owner says the narrowed token works; the
decisions service records it (an accept of the auto-scoping deadline of the narrowing day)."""

from sqlmodel import Session

from bot.services import narrowing
from bot.services.decisions import Actor, Outcome
from bot.slack.context import Deps
from bot.slack.listeners.common import Click
from bot.slack.references import Resolved


def decide(deps: Deps, click: Click, session: Session, ref: Resolved, actor: Actor) -> Outcome:
    return narrowing.looks_fine(session=session, actor=actor, token_pk=ref.token_pk, fallback=ref.deadline)
