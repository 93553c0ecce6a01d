"""The opaque references buttons carry, and their resolution on the server.

A button never says which token or whose: it carries `n<id>` (a reminder's notification),
`t<pk>[:<deadline kind>:<due date>]` (a token in /tokens or the App Home) or `d<id>` (a decision
awaiting approval). Every click resolves it against the database, and the decisions service
checks who may act; nothing in a payload is trusted. A deadline named by a button counts only if
tokenbot computes that deadline for the token now.

Services never make a reference: they give the notification id of each item they send, and
`referenced` / `referenced_narrowed` turn it into the button's `n<id>` here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from sqlmodel import Session

from bot.domain.policy import Policy
from bot.models import Notification, Step, Token
from bot.services import report
from bot.services.decisions import DeadlineRef
from bot.services.narrowing import NarrowedMessage
from bot.services.ports import ReminderMessage


@dataclass(frozen=True, slots=True)
class Resolved:
    token_pk: int
    deadline: DeadlineRef | None
    notification_id: int | None = None


def for_notification(notification_id: int) -> str:
    return f"n{notification_id}"


def _for_item(reference: str, notification_id: int | None, index: int) -> str:
    """An item's reference: the one it has, its notification's, or (a preview's) a placeholder."""
    if reference:
        return reference
    return for_notification(notification_id) if notification_id is not None else f"dry-run-{index}"


def referenced(message: ReminderMessage) -> ReminderMessage:
    """The reminder with each item's buttons naming its notification."""
    items = tuple(
        replace(item, reference=_for_item(item.reference, item.notification_id, index))
        for index, item in enumerate(message.items)
    )
    return replace(message, items=items)


def referenced_narrowed(message: NarrowedMessage) -> NarrowedMessage:
    """The message after a narrowing with each token's buttons naming its notification."""
    tokens = tuple(
        replace(token, reference=_for_item(token.reference, token.notification_id, index))
        for index, token in enumerate(message.tokens)
    )
    return replace(message, tokens=tokens)


def for_token(token_pk: int, deadline_kind: str | None = None, due_date: date | None = None) -> str:
    if deadline_kind and due_date:
        return f"t{token_pk}:{deadline_kind}:{due_date.isoformat()}"
    return f"t{token_pk}"


def for_decision(decision_id: int) -> str:
    return f"d{decision_id}"


def decision_id(value: str | None) -> int | None:
    if value and value.startswith("d") and _digits(value[1:]):
        return int(value[1:])
    return None


def resolve(session: Session, value: str | None, policy: Policy, now: datetime) -> Resolved | None:
    """The token (and deadline) a button is about; None for anything malformed or unknown."""
    if not value or len(value) > 200:
        return None
    if value.startswith("n") and _digits(value[1:]):
        row = session.get(Notification, int(value[1:]))
        if row is None:
            return None
        if row.step == Step.NARROWED:
            return Resolved(row.token_pk, _narrowing_day(session, row), row.id)
        return Resolved(
            row.token_pk,
            _deadline(session, row.token_pk, row.deadline_kind, row.due_date, policy, now),
            row.id,
        )
    if value.startswith("t"):
        head, _, rest = value[1:].partition(":")
        if not _digits(head):
            return None
        kind, _, day = rest.partition(":")
        if not rest:
            return Resolved(int(head), None)
        try:
            due_date = date.fromisoformat(day)
        except ValueError:
            return None
        return Resolved(int(head), _deadline(session, int(head), kind, due_date, policy, now))
    return None


def _deadline(
    session: Session, token_pk: int, kind: str, due_date: date, policy: Policy, now: datetime
) -> DeadlineRef:
    """The deadline as tokenbot computes it now (its exact time). A date tokenbot does not compute
    for the token now (the deadline moved since the message, or the button was made up) comes back
    `stale`, and the decision is refused."""
    evaluation = report.deadlines_now(session=session, policy=policy, now=now, token_pk=token_pk)
    deadline = evaluation.deadline(kind, due_date) if evaluation is not None else None
    if deadline is not None:
        return DeadlineRef.of(deadline)
    return DeadlineRef(
        kind=kind, due_at=datetime.combine(due_date, datetime.min.time(), tzinfo=UTC), stale=True
    )


def _narrowing_day(session: Session, row: Notification) -> DeadlineRef:
    """A message after auto-scoping narrowed a token is about the day it was narrowed, as the token
    row says now (a later narrowing, or none, makes the message stale)."""
    token = session.get(Token, row.token_pk)
    narrowed_at = token.narrowed_at if token is not None else None
    if narrowed_at is not None and narrowed_at.date() == row.due_date:
        return DeadlineRef(kind=row.deadline_kind, due_at=narrowed_at)
    at = datetime.combine(row.due_date, datetime.min.time(), tzinfo=UTC)
    return DeadlineRef(kind=row.deadline_kind, due_at=at, stale=True)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit()
