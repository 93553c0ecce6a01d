"""What the listeners share: reading a click, applying a decision, telling the person, updating
the messages that show the token, and asking the admins when a decision needs them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot import metrics
from bot.db import session_scope
from bot.services import decisions, queries, report
from bot.services.decisions import Actor, DeadlineRef, Outcome
from bot.slack import blocks, references
from bot.slack.context import Deps
from bot.slack.surfaces.home import publish as publish_home
from bot.slack.surfaces.refresh import refresh_reminder

logger = logging.getLogger(__name__)

UNKNOWN_DEADLINE = DeadlineRef(kind="unknown", due_at=references.EPOCH)
# A failure after the claim leaves it in progress: `decisions.claims.settle` records what Databricks did.
SOMETHING_WENT_WRONG = (
    "Something went wrong on tokenbot's side (the error is logged). Nothing else will be done; "
    "anything Databricks was already asked is checked and recorded."
)


@dataclass(frozen=True, slots=True)
class Click:
    user_id: str
    value: str | None
    channel: str | None  # None when clicked in the App Home
    message_ts: str | None
    trigger_id: str | None
    block_id: str = ""  # the clicked button's block (carries a typed reason, or whose pick it is)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Click:
        container = body.get("container") or {}
        action = (body.get("actions") or [{}])[0]
        return cls(
            user_id=body["user"]["id"],
            value=action.get("value"),
            channel=container.get("channel_id") or (body.get("channel") or {}).get("id"),
            message_ts=container.get("message_ts"),
            trigger_id=body.get("trigger_id"),
            block_id=action.get("block_id") or "",
        )

    @classmethod
    def of_submission(cls, body: dict[str, Any]) -> Click:
        meta = _metadata(body["view"].get("private_metadata"))
        return cls(
            user_id=body["user"]["id"],
            value=meta.get("ref"),
            channel=meta.get("channel"),
            message_ts=meta.get("ts"),
            trigger_id=body.get("trigger_id"),
        )


def _metadata(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


Decide = Callable[[Session, references.Resolved, Actor], Outcome]


def apply(deps: Deps, client: WebClient, click: Click, decide: Decide) -> Outcome | None:
    """Resolve the button, run one decision in one transaction, then tell and update."""

    def on_the_reference(session: Session) -> Outcome:
        resolved = references.resolve(session, click.value, deps.settings.policy, deps.now())
        # An unknown or forged reference still goes through the service, which records the refusal.
        resolved = resolved or references.Resolved(token_pk=0, deadline=UNKNOWN_DEADLINE)
        return decide(session, resolved, deps.actor(click.user_id))

    outcome = run_decision(deps, client, click, "decision on", on_the_reference, identify=True)
    if outcome is not None:
        after(deps, client, click, outcome)
    return outcome


def run_decision(
    deps: Deps,
    client: WebClient,
    click: Click,
    what: str,
    decide: Callable[[Session], Outcome],
    *,
    identify: bool = False,
) -> Outcome | None:
    """One decision: its claim and its record are short transactions of their own, and its
    Databricks call holds none (`decisions.ledger`), so decisions on different tokens run side by
    side on the listener pool, on SQLite too. A failure is logged, and the clicker told that
    nothing changed: None then. `identify` first matches someone clicking before tokenbot
    matched them."""
    try:
        if identify:
            deps.identify(client, click.user_id)
        with session_scope(deps.engine) as session:
            return decide(session)
    except Exception:
        logger.exception("%s %r by %s failed", what, click.value, click.user_id)
        tell(client, click, SOMETHING_WENT_WRONG)
        return None


def after(deps: Deps, client: WebClient, click: Click, outcome: Outcome) -> None:
    repeat = _changed_nothing(outcome)
    # The message first: everyone who sees it (the owner, the admins) learns the outcome there.
    if outcome.token_pk and not repeat:
        refresh_token_messages(deps, client, outcome.token_pk)
    told = (click.user_id, click.value, outcome.action)
    if repeat and not deps.answers.first_in_a_while(told):
        count(outcome)  # recorded, not told again
    else:
        deps.answers.told(told)
        answer(client, click, outcome)
    if outcome.status == decisions.REQUESTED and outcome.duplicate_of is None:
        ask_admins(deps, client, outcome)
    if click.channel is None:  # clicked in the App Home (or a modal opened there): redraw it
        publish_home(deps, client, click.user_id)


def _changed_nothing(outcome: Outcome) -> bool:
    """A duplicate: the decision it repeats refreshes the messages when it is recorded, so a burst
    of double clicks does not redraw the same message over and over. (A repeated rotation may have
    settled the earlier one: it still refreshes.)"""
    return outcome.parameters.get("refused") == "duplicate" and outcome.action != decisions.ROTATE


def count(outcome: Outcome) -> None:
    metrics.DECISIONS.labels(outcome.action, outcome.status).inc()


def answer(client: WebClient, click: Click, outcome: Outcome) -> None:
    """Count the decision and tell the clicker its outcome (with Retry when it may work again)."""
    count(outcome)
    retry = references.for_decision(outcome.decision_id) if outcome.retryable else None
    tell(client, click, outcome.message, retry)


def tell(client: WebClient, click: Click, message: str, retry_reference: str | None = None) -> None:
    """An answer only the clicker sees: ephemeral where they clicked; a DM from the App Home, or
    when the ephemeral cannot reach them there (e.g. a channel they are not in). `message` is
    plain text (a service's): escaped here, once."""
    built = [b.to_dict() for b in blocks.outcome_blocks(message, retry_reference)]
    message = blocks.safe_text(message)
    if click.channel:
        try:
            client.chat_postEphemeral(channel=click.channel, user=click.user_id, text=message, blocks=built)
            return
        except SlackApiError as error:
            logger.info(
                "ephemeral to %s in %s failed (%s); sending a DM",
                click.user_id,
                click.channel,
                error.response.get("error"),
            )
    try:
        client.chat_postMessage(channel=click.user_id, text=message, blocks=built)
    except SlackApiError as error:
        logger.error("could not tell %s the outcome: %s", click.user_id, error.response.get("error"))


def refresh_token_messages(deps: Deps, client: WebClient, token_pk: int) -> None:
    """Every reminder that lists this token shows what was decided."""
    with session_scope(deps.engine) as session:
        for channel, ts in queries.message_places(session=session, token_pk=token_pk):
            refresh_reminder(client, session, deps.settings.policy, channel, ts, deps.now())


def ask_admins(deps: Deps, client: WebClient, outcome: Outcome) -> None:
    """A decision that needs an admin: Approve/Deny, or for "Not mine" a pick of the owner."""
    channel = deps.settings.slack.admin_channel
    if not channel:
        logger.warning("decision %s needs an admin but slack.admin_channel is not set", outcome.decision_id)
        return
    with session_scope(deps.engine) as session:
        views = report.token_views(
            session=session,
            policy=deps.settings.policy,
            now=deps.now(),
            token_pks=[outcome.token_pk],
            include_gone=True,
        )
    if not views:
        return
    view = views[0]
    line = blocks.token_line(view.workspace, view.token_id, view.comment)
    request = blocks.request_wording(outcome)
    if outcome.action == decisions.NOT_MINE:
        text, built = blocks.owner_wanted(request, line, references.for_token(outcome.token_pk))
    else:
        text, built = blocks.approval_request(request, line, references.for_decision(outcome.decision_id))
    try:
        client.chat_postMessage(channel=channel, text=text, blocks=[b.to_dict() for b in built])
    except SlackApiError as error:
        logger.error(
            "could not ask the admins about decision %s: %s", outcome.decision_id, error.response.get("error")
        )


def resolve_request(
    deps: Deps,
    client: WebClient,
    click: Click,
    body: dict[str, Any],
    decide: Callable[[Session, int, Actor], Outcome],
) -> Outcome | None:
    """Approve or Deny on an approval message: decide, tell both people, close the message."""
    outcome = run_decision(
        deps,
        client,
        click,
        "approval",
        lambda session: decide(session, references.decision_id(click.value) or 0, deps.actor(click.user_id)),
    )
    if outcome is None:
        return None
    answer(client, click, outcome)
    if outcome.status in (decisions.APPLIED, decisions.DENIED) and outcome.duplicate_of is None:
        close_request(client, body, outcome.message)
        requester = outcome.parameters.get("requested_by")
        if requester:
            try:
                client.chat_postMessage(channel=requester, text=blocks.safe_text(outcome.message))
            except SlackApiError as error:
                logger.error("could not tell %s: %s", requester, error.response.get("error"))
    if outcome.token_pk:
        refresh_token_messages(deps, client, outcome.token_pk)
    return outcome


def close_request(client: WebClient, body: dict[str, Any], outcome_text: str) -> None:
    """The admins' message loses its buttons and says what was decided."""
    message = body.get("message") or {}
    channel = (body.get("container") or {}).get("channel_id")
    ts = (body.get("container") or {}).get("message_ts")
    if not channel or not ts:
        return
    first = (message.get("blocks") or [{}])[0]
    original = (first.get("text") or {}).get("text") or message.get("text") or ""
    try:
        client.chat_update(
            channel=channel,
            ts=ts,
            text=outcome_text,
            blocks=[b.to_dict() for b in blocks.resolved(original, outcome_text)],
        )
    except SlackApiError as error:
        logger.error("could not close the request %s/%s: %s", channel, ts, error.response.get("error"))


def open_modal(deps: Deps, client: WebClient, click: Click, build, refuse: Decide) -> None:
    """Open a decision's modal for the owner or an admin; anyone else is refused (and recorded)
    without a modal."""
    deps.identify(client, click.user_id)
    with session_scope(deps.engine) as session:
        resolved = references.resolve(session, click.value, deps.settings.policy, deps.now())
        actor = deps.actor(click.user_id)
        # A stale deadline opens no form: the decision records the refusal and the message is redrawn.
        allowed = (
            resolved is not None
            and not (resolved.deadline is not None and resolved.deadline.stale)
            and decisions.may_decide(session=session, actor=actor, token_pk=resolved.token_pk)
        )
        view = None
        if allowed:
            found = report.token_views(
                session=session, policy=deps.settings.policy, now=deps.now(), token_pks=[resolved.token_pk]
            )
            view = build(found[0], resolved) if found else None
    if view is None:
        apply(deps, client, click, refuse)
        return
    try:
        client.views_open(trigger_id=click.trigger_id, view=view)
    except SlackApiError as error:
        logger.error("could not open a modal for %s: %s", click.user_id, error.response.get("error"))
        tell(client, click, "Slack did not open the form in time; please click again.")
