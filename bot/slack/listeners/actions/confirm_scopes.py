"""Confirm scopes: open the modal, pre-selected with what auto-scoping inferred."""

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
                list(view.inferred_scopes) or list(view.scopes),
                modals.metadata(click.value, click.channel, click.message_ts),
            ),
            refuse=lambda session, ref, actor: decisions.confirm_scopes(
                session=session, gateway_for=deps.gateway_for, actor=actor, token_pk=ref.token_pk, scopes=[]
            ),
        )

    return handle
