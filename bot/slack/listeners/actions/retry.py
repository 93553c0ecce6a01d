"""Retry: run a decision that failed in Databricks again, with the same choices."""

from bot.db import session_scope
from bot.services import decisions
from bot.slack import references
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, after, logger, tell


def handler(deps: Deps):
    def handle(ack, body, client):
        ack()
        click = Click.of(body)
        try:
            with deps.one_decision_at_a_time(), session_scope(deps.engine) as session:
                outcome = decisions.retry(
                    session=session,
                    gateway_for=deps.gateway_for,
                    actor=deps.actor(click.user_id),
                    decision_id=references.decision_id(click.value) or 0,
                    policy=deps.settings.policy,
                    secret_bindings=deps.settings.secret_bindings,
                    dry_run=deps.settings.dry_run,
                )
        except Exception:
            logger.exception("retry of %r by %s failed", click.value, click.user_id)
            tell(
                client,
                click,
                "Something went wrong on tokenbot's side; nothing was changed. The error is logged.",
            )
            return
        after(deps, client, click, outcome)

    return handle
