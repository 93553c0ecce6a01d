"""Revoke: Slack already asked "are you sure?" (the button's confirm dialog); DELETE the token."""

from urllib.parse import unquote

from bot.services import decisions
from bot.slack.command_blocks import REASON_BLOCK_PREFIX
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, apply


def handler(deps: Deps):
    def handle(ack, body, client):
        ack()
        reason = _typed_reason(body) or "revoked from Slack"
        apply(
            deps,
            client,
            Click.of(body),
            lambda session, ref, actor: decisions.revoke(
                session=session,
                gateway_for=deps.gateway_for,
                actor=actor,
                token_pk=ref.token_pk,
                reason=reason,
                dry_run=deps.settings.dry_run,
                deadline=ref.deadline,
            ),
        )

    return handle


def _typed_reason(body: dict) -> str:
    """`/tokens revoke <id> <reason>`: the admin's reason, carried by the confirmation's block id."""
    block_id = (body.get("actions") or [{}])[0].get("block_id") or ""
    if not block_id.startswith(REASON_BLOCK_PREFIX):
        return ""
    return unquote(block_id.removeprefix(REASON_BLOCK_PREFIX))
