"""Confirm scopes: open the modal, pre-selected with what auto-scoping inferred plus, for a token in
observation, exactly the scopes the calls narrowing would deny need (bot/services/shadow.py, worked
out again for this click), else the rarely used scopes the audit log shows (bot/services/usage.py).
What is submitted is checked again by the decisions service, never trusted."""

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
    return modals.confirm_scopes(
        view, preselected(view, deps), modals.metadata(click.value, click.channel, click.message_ts)
    )


def refuse(deps: Deps, session: Session, ref: Resolved, actor: Actor) -> Outcome:
    return decisions.confirm_scopes(
        session=session,
        gateway_for=deps.gateway_for,
        actor=actor,
        token_pk=ref.token_pk,
        scopes=[],
        deadline=ref.deadline,  # a stale one is refused as such
    )


def preselected(view: TokenView, deps: Deps) -> list[str]:
    chosen = list(view.inferred_scopes) or list(view.scopes)
    if view.shadow is not None:  # what narrowing keeps, plus what the calls it would deny need
        chosen = list(dict.fromkeys([*view.shadow.kept, *view.inferred_scopes])) or chosen
        return chosen + [scope for scope in view.shadow.needed_scopes if scope not in chosen]
    with session_scope(deps.engine) as session:
        rare = queries.rare_scopes(
            session=session, policy=deps.settings.policy, now=deps.now(), token_pk=view.pk
        )
    return chosen + [scope for scope in rare if scope not in chosen]
