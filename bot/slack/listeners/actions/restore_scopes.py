"""Restore scopes: after auto-scoping narrowed a token, pre-select the scopes it lost."""

from slack_sdk.models.views import View
from sqlmodel import Session

from bot.db import session_scope
from bot.services import decisions, queries
from bot.services.decisions import Actor, Outcome
from bot.services.report import TokenView
from bot.slack.blocks import modals
from bot.slack.context import Deps
from bot.slack.listeners.common import Click
from bot.slack.references import Resolved


def build(deps: Deps, click: Click, view: TokenView, ref: Resolved) -> View:
    return modals.restore_scopes(
        view, lost_scopes(view.pk, deps), modals.metadata(click.value, click.channel, click.message_ts)
    )


def refuse(deps: Deps, session: Session, ref: Resolved, actor: Actor) -> Outcome:
    return decisions.restore_scopes(
        session=session, gateway_for=deps.gateway_for, actor=actor, token_pk=ref.token_pk, scopes=[]
    )


def lost_scopes(token_pk: int, deps: Deps) -> list[str]:
    """The rare_api scopes it lost plus the other lost ones that need no approval
    (bot/services/narrowing.py `scopes_to_restore`)."""
    with session_scope(deps.engine) as session:
        return queries.lost_scopes(
            session=session, policy=deps.settings.policy, now=deps.now(), token_pk=token_pk
        )
