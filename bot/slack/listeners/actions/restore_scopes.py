"""Restore scopes: after auto-scoping narrowed a token, pre-select the scopes it lost."""

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
            build=lambda view, ref: modals.restore_scopes(
                view,
                lost_scopes(view.pk, deps),
                modals.metadata(click.value, click.channel, click.message_ts),
            ),
            refuse=lambda session, ref, actor: decisions.restore_scopes(
                session=session, gateway_for=deps.gateway_for, actor=actor, token_pk=ref.token_pk, scopes=[]
            ),
        )

    return handle


def lost_scopes(token_pk: int, deps: Deps) -> list[str]:
    from bot.db import session_scope
    from bot.models import Token

    with session_scope(deps.engine) as session:
        token = session.get(Token, token_pk)
        if token is None:
            return []
        return [s for s in (token.previous_scopes or []) if s not in set(token.scopes or [])]
