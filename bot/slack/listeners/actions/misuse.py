"""Acknowledge and Revoke on a misuse finding in the admins channel: admins only (the misuse
service checks, and records a refusal); Revoke is the decisions service's revoke. After either,
the finding's message shows who did what instead of its buttons."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient

from bot.db import session_scope
from bot.services import misuse
from bot.services.ports import DeliveryError
from bot.slack.blocks.misuse import finding_id
from bot.slack.context import Deps
from bot.slack.listeners.common import Click, after, run_decision
from bot.slack.misuse import SlackMisuseNotifier

logger = logging.getLogger(__name__)


def acknowledge(deps: Deps, body: dict[str, Any], client: WebClient) -> None:
    _act(
        deps,
        body,
        client,
        "acknowledge of finding",
        lambda session, actor, number: misuse.acknowledge(
            session=session, actor=actor, finding_id=number, now=deps.now()
        ),
    )


def revoke(deps: Deps, body: dict[str, Any], client: WebClient) -> None:
    _act(
        deps,
        body,
        client,
        "revoke from finding",
        lambda session, actor, number: misuse.revoke(
            session=session,
            gateway_for=deps.gateway_for,
            actor=actor,
            finding_id=number,
            dry_run=deps.settings.dry_run,
            now=deps.now(),
        ),
    )


def _act(deps: Deps, body: dict[str, Any], client: WebClient, what: str, decide) -> None:
    """One decision on the finding the button names, in one transaction; then tell and redraw."""
    click = Click.of(body)
    number = finding_id(click.value)
    outcome = run_decision(
        deps,
        client,
        click,
        what,
        lambda session: decide(session, deps.actor(click.user_id), number),
        identify=True,
    )
    _done(deps, client, click, outcome)


def _done(deps: Deps, client: WebClient, click: Click, outcome) -> None:
    if outcome is None:
        return
    after(deps, client, click, outcome)
    number = finding_id(click.value)
    with session_scope(deps.engine) as session:
        notice = misuse.notice_of(session=session, finding_id=number)
        where = misuse.message_of(session=session, finding_id=number)
    if notice is None or where is None:
        return
    try:
        SlackMisuseNotifier(client).update_finding(where[0], where[1], notice)
    except DeliveryError as error:
        logger.warning("could not redraw misuse finding %s: %s", number, error.message)
