"""Extend: a modal for the number of days and the reason (or, where no API can lengthen the
token, the service's honest explanation)."""

from typing import Any

from slack_sdk import WebClient

from bot.domain.policy import DeadlineKind
from bot.services import decisions
from bot.slack.blocks import modals
from bot.slack.context import Deps
from bot.slack.listeners.common import UNKNOWN_DEADLINE, Click, open_modal


def handle(deps: Deps, body: dict[str, Any], client: WebClient) -> None:
    click = Click.of(body)
    open_modal(
        deps,
        client,
        click,
        build=lambda view, ref: modals.extend(
            view,
            DeadlineKind(ref.deadline.kind) if ref.deadline else DeadlineKind.ORG_POLICY,
            modals.due_label(view, DeadlineKind(ref.deadline.kind), "UTC") if ref.deadline else "soon",
            deps.settings.policy.max_extension_days,
            modals.metadata(click.value, click.channel, click.message_ts),
        ),
        refuse=lambda session, ref, actor: decisions.extend(
            session=session,
            gateway_for=deps.gateway_for,
            actor=actor,
            token_pk=ref.token_pk,
            deadline=ref.deadline or UNKNOWN_DEADLINE,
            days=0,
            reason="",
            policy=deps.settings.policy,
        ),
    )

