"""An admin picks the owner of a token someone handed back (the user picker in the admins channel)."""

from dataclasses import replace
from typing import Any

from slack_sdk import WebClient

from bot.services import decisions
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, apply, close_request


def handle(deps: Deps, body: dict[str, Any], client: WebClient) -> None:
    chosen = body["actions"][0].get("selected_user") or ""
    click = Click.of(body)
    click = replace(click, value=click.block_id.removeprefix("assign:"))  # the picker's block names the token
    outcome = apply(
        deps,
        client,
        click,
        lambda session, ref, actor: decisions.assign_owner(
            session=session, actor=actor, token_pk=ref.token_pk, owner_slack_id=chosen
        ),
    )
    if outcome is not None and outcome.status == decisions.APPLIED:
        close_request(client, body, outcome.message)
