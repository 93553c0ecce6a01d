"""An admin picks the owner of a token someone handed back (the user picker in the admins channel)."""

from bot.services import decisions
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, apply, close_request


def handler(deps: Deps):
    def handle(ack, body, client):
        ack()
        action = body["actions"][0]
        chosen = action.get("selected_user") or ""
        reference = (action.get("block_id") or "").removeprefix("assign:")
        click = Click.of(body)
        click = Click(click.user_id, reference, click.channel, click.message_ts, click.trigger_id)
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

    return handle
