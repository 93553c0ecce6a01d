"""Confirm scopes: open the modal, pre-selected with what auto-scoping inferred plus the rarely
used scopes the audit log shows (the `rare_api` finding, bot/services/usage.py)."""

from bot.services import decisions
from bot.slack import modals
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, open_modal


def handler(deps: Deps):
    def handle(ack, body, client):
        ack()
        click = Click.of(body)
        open_modal(
            deps,
            client,
            click,
            build=lambda view, ref: modals.confirm_scopes(
                view,
                preselected(view, deps),
                modals.metadata(click.value, click.channel, click.message_ts),
            ),
            refuse=lambda session, ref, actor: decisions.confirm_scopes(
                session=session,
                gateway_for=deps.gateway_for,
                actor=actor,
                token_pk=ref.token_pk,
                scopes=[],
                deadline=ref.deadline,  # a stale one is refused as such
            ),
        )

    return handle


def preselected(view, deps: Deps) -> list[str]:
    from bot.db import session_scope
    from bot.models import Token
    from bot.services import usage

    chosen = list(view.inferred_scopes) or list(view.scopes)
    with session_scope(deps.engine) as session:
        token = session.get(Token, view.pk)
        if token is None:
            return chosen
        rare = usage.rare_scopes_of(session=session, policy=deps.settings.policy, now=deps.now(), token=token)
    return chosen + [scope for scope in rare if scope not in chosen]
