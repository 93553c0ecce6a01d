"""Snooze: the next reminder for this deadline comes tomorrow, never after the deadline."""

from bot.services import decisions
from bot.slack.context import Deps
from bot.slack.listeners.common import UNKNOWN_DEADLINE, Click, apply


def handler(deps: Deps):
    def handle(ack, body, client):
        ack()
        apply(
            deps,
            client,
            Click.of(body),
            lambda session, ref, actor: decisions.snooze(
                session=session, actor=actor, token_pk=ref.token_pk, deadline=ref.deadline or UNKNOWN_DEADLINE
            ),
        )

    return handle
