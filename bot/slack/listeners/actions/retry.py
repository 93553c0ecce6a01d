"""Retry: run a decision that failed in Databricks again, with the same choices."""

from typing import Any

from slack_sdk import WebClient

from bot.services import decisions
from bot.slack import references
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, after, run_decision


def handle(deps: Deps, body: dict[str, Any], client: WebClient) -> None:
    click = Click.of(body)
    outcome = run_decision(
        deps,
        client,
        click,
        "retry of",
        lambda session: decisions.retry(
            session=session,
            gateway_for=deps.gateway_for,
            actor=deps.actor(click.user_id),
            decision_id=references.decision_id(click.value) or 0,
            policy=deps.settings.policy,
            secret_bindings=deps.settings.secret_bindings,
            dry_run=deps.settings.dry_run,
        ),
    )
    if outcome is not None:
        after(deps, client, click, outcome)
