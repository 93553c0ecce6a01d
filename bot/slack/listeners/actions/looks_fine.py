"""Looks fine: after auto-scoping narrowed a token, its owner says the narrowed token works; the
decisions service records it (an accept of the auto-scoping deadline of the narrowing day)."""

from bot.services import narrowing
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, apply


def handler(deps: Deps):
    def handle(ack, body, client):
        ack()
        apply(
            deps,
            client,
            Click.of(body),
            lambda session, ref, actor: narrowing.looks_fine(
                session=session, actor=actor, token_pk=ref.token_pk, fallback=ref.deadline
            ),
        )

    return handle
