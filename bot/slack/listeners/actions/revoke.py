"""Revoke: Slack already asked "are you sure?" (the button's confirm dialog); DELETE the token."""

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
            lambda session, ref, actor: decisions.revoke(
                session=session,
                gateway_for=deps.gateway_for,
                actor=actor,
                token_pk=ref.token_pk,
                reason="revoked from Slack",
                dry_run=deps.settings.dry_run,
                deadline=ref.deadline,
            ),
        )

    return handle
