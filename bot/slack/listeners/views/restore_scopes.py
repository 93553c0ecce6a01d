"""The Restore scopes modal was submitted: add the chosen scopes back (after the ack)."""

from bot.services import decisions
from bot.slack import modals
from bot.slack.context import Deps
from bot.slack.ids import Block
from bot.slack.listeners.common import Click, apply
from bot.slack.listeners.views.values import selected


def handler(deps: Deps):
    def handle(ack, body, client):
        scopes = selected(body, Block.SCOPES, modals.SCOPE_ACTION)
        if not scopes:
            ack(response_action="errors", errors={Block.SCOPES: "Choose at least one scope to add back."})
            return
        ack()
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

    return handle
