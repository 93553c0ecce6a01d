"""Not mine: the token goes to the admins channel, where an admin picks its owner."""

from bot.services import decisions
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, apply


def handler(deps: Deps):
    def handle(ack, body, client):
        ack()
        apply(
            deps,
            client,
            Click.of(body),
            lambda session, ref, actor: decisions.not_mine(
                session=session, actor=actor, token_pk=ref.token_pk, deadline=ref.deadline
            ),
        )

    return handle
