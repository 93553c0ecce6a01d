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
    """The rare_api scopes it lost plus the other lost ones that need no approval
    (bot/services/narrowing.py `scopes_to_restore`)."""
    from bot.db import session_scope
    from bot.models import Token
    from bot.services import narrowing

    with session_scope(deps.engine) as session:
        token = session.get(Token, token_pk)
        if token is None:
            return []
        return narrowing.scopes_to_restore(
            session=session, policy=deps.settings.policy, token=token, now=deps.now()
        )
