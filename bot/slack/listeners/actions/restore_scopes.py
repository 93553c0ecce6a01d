"""Restore scopes: after auto-scoping narrowed a token, pre-select the scopes it lost."""

from typing import Any

from slack_sdk import WebClient

from bot.db import session_scope
from bot.services import decisions, queries
from bot.slack.blocks import modals
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, open_modal


def handle(deps: Deps, body: dict[str, Any], client: WebClient) -> None:
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


def lost_scopes(token_pk: int, deps: Deps) -> list[str]:
    """The rare_api scopes it lost plus the other lost ones that need no approval
    (bot/services/narrowing.py `scopes_to_restore`)."""
    with session_scope(deps.engine) as session:
        return queries.lost_scopes(
            session=session, policy=deps.settings.policy, now=deps.now(), token_pk=token_pk
        )
