"""Approve (admins): apply a request that needed an admin, and close the approval message."""

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
            lambda session, decision_id, actor: decisions.approve(
                session=session,
                gateway_for=deps.gateway_for,
                actor=actor,
                decision_id=decision_id,
                dry_run=deps.settings.dry_run,
            ),
        )

    return handle
