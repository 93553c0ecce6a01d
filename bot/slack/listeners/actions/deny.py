"""Deny (admins): refuse a request; the requester is told and may decide otherwise."""

from bot.services import decisions
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, resolve_request


def handler(deps: Deps):
    def handle(ack, body, client):
        ack()
        resolve_request(
            deps,
            client,
            Click.of(body),
            body,
            lambda session, decision_id, actor: decisions.deny(
                session=session, actor=actor, decision_id=decision_id
            ),
        )

    return handle
