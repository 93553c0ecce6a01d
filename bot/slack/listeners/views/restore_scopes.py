"""The Restore scopes modal was submitted: add the chosen scopes back (after the ack)."""

from typing import Any

from slack_sdk import WebClient

from bot.services import decisions
from bot.slack.blocks import modals
from bot.slack.context import Deps
from bot.slack.ids import Block
from bot.slack.listeners.common import Click, apply
from bot.slack.listeners.views.values import selected


def _scopes(body: dict[str, Any]) -> list[str]:
    return selected(body, Block.SCOPES, modals.SCOPE_ACTION)


def errors(body: dict[str, Any]) -> dict[str, str]:
    if not _scopes(body):
        return {Block.SCOPES: "Choose at least one scope to add back."}
    return {}


def handle(deps: Deps, body: dict[str, Any], client: WebClient) -> None:
    scopes = _scopes(body)
    apply(
        deps,
        client,
        Click.of_submission(body),
        lambda session, ref, actor: decisions.restore_scopes(
            session=session,
            gateway_for=deps.gateway_for,
            actor=actor,
            token_pk=ref.token_pk,
            scopes=scopes,
            dry_run=deps.settings.dry_run,
        ),
    )
