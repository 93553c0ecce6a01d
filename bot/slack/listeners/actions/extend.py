"""Extend: a modal for the number of days and the reason (or, where no API can lengthen the
token, the service's honest explanation)."""

from slack_sdk.models.views import View
from sqlmodel import Session

from bot.domain.deadlines import DeadlineKind
from bot.services import decisions
from bot.services.decisions import Actor, Outcome
from bot.services.report import TokenView
from bot.slack.blocks import modals
from bot.slack.context import Deps
from bot.slack.listeners.common import UNKNOWN_DEADLINE, Click
from bot.slack.references import Resolved


def build(deps: Deps, click: Click, view: TokenView, ref: Resolved) -> View:
    return modals.extend(
        view,
        DeadlineKind(ref.deadline.kind) if ref.deadline else DeadlineKind.ORG_POLICY,
        modals.due_label(view, DeadlineKind(ref.deadline.kind), "UTC") if ref.deadline else "soon",
        deps.settings.policy.max_extension_days,
        modals.metadata(click.value, click.channel, click.message_ts),
    )


def refuse(deps: Deps, session: Session, ref: Resolved, actor: Actor) -> Outcome:
    return decisions.extend(
        session=session,
        gateway_for=deps.gateway_for,
        actor=actor,
        token_pk=ref.token_pk,
        deadline=ref.deadline or UNKNOWN_DEADLINE,
        days=0,
        reason="",
        policy=deps.settings.policy,
    )
