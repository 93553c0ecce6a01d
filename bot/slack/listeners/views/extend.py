"""The Extend modal was submitted: days from 1 to 365 and a reason; apply after the ack."""

from bot.services import decisions
from bot.slack import modals
from bot.slack.context import Deps
from bot.slack.ids import Block
from bot.slack.listeners.common import UNKNOWN_DEADLINE, Click, apply
from bot.slack.listeners.views.values import text

MAX_DAYS = 365


def handler(deps: Deps):
    def handle(ack, body, client):
        days_text = text(body, Block.DAYS, modals.DAYS_ACTION)
        reason = text(body, Block.REASON, modals.REASON_ACTION)
        errors = {}
        if not (days_text.isascii() and days_text.isdigit()) or not 1 <= int(days_text) <= MAX_DAYS:
            errors[Block.DAYS] = f"A whole number of days from 1 to {MAX_DAYS}."
        if not reason:
            errors[Block.REASON] = "Say why: the admins see it."
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        apply(
            deps,
            client,
            Click.of_submission(body),
            lambda session, ref, actor: decisions.extend(
                session=session,
                gateway_for=deps.gateway_for,
                actor=actor,
                token_pk=ref.token_pk,
                deadline=ref.deadline or UNKNOWN_DEADLINE,
                days=int(days_text),
                reason=reason,
                policy=deps.settings.policy,
                secret_bindings=deps.settings.secret_bindings,
                dry_run=deps.settings.dry_run,
            ),
        )

    return handle
