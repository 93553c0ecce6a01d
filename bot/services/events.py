"""Auto-scoping events, from the webhook (`POST /events/autoscope`) and from files
(`tokenbot events import`): validated, stored once, applied to the token.

The shape is DESIGN.md section 5::

    {"id": "evt-123", "type": "autoscope.reminder", "workspace": "prod", "token_id": "abc",
     "enforcement_at": "2026-12-01T00:00:00Z", "inferred_scopes": ["sql"]}

- `id` (text, up to 200 characters) makes delivery idempotent: the `event` table's unique key.
  The same id again is reported as a duplicate and nothing is stored or applied twice.
- `type` is `autoscope.reminder` or `autoscope.enforced`.
- `workspace` must be one of the configured workspaces; `token_id` is text of letters, digits,
  `.`, `_` and `-` (it is read from Databricks by that id).
- `enforcement_at`: an ISO 8601 time with its offset (`Z` or `+00:00`), or a date (midnight UTC).
  Required for `autoscope.reminder`, and not in the past there; for `autoscope.enforced` it is
  when scopes were applied (default: when the event arrived).
- `inferred_scopes` (optional), `scopes` (required for `autoscope.enforced`, not empty) and
  `previous_scopes` (optional) are lists of scope names. Other keys are kept in the stored
  payload and otherwise ignored.

A malformed event is refused with an `EventError` naming the field; nothing is stored.

What an event does to its token:

- `autoscope.reminder` sets (or corrects) `enforcement_at`, which beats the date tokenbot derives
  from the observation start, and `inferred_scopes` when the event has them. The next sync
  replaces `inferred_scopes` with what Databricks lists (the live value); `enforcement_at` is
  tokenbot's own and stays.
- `autoscope.enforced` records the narrowing as if a sync had seen it: `previous_scopes` (the
  event's, else the token's scopes before; when those are unknown or already the new ones,
  `all-apis`, what applies while Databricks observes), `scopes`, `inferred_scopes` (the event's,
  else its scopes), `narrowed_at` (= `enforcement_at`), `autoscope_state` COMPLETED. When a sync
  already recorded this narrowing (same scopes, `narrowed_at` set) only `enforcement_at` is kept.
  The owner then gets the post-narrowing message (`bot/services/narrowing.py`).

Nothing an event claims is believed before Databricks agrees (DESIGN.md section 6, events):
`ingest` reads the token from Databricks (`WorkspaceGateway.get_token`) first. An `enforced`
event must match what Databricks lists now (the same scopes, no longer observed); a reminder
needs a token Databricks still observes. An event Databricks contradicts, or about a token it
does not have, is stored with status `rejected` and the reason, and changes nothing: nobody is
told a token was narrowed on the word of an event alone. The scopes a narrowed token had come
from tokenbot's own record when it has one, the event's `previous_scopes` only otherwise.

An event that cannot be checked now (Databricks unreachable), or about a token tokenbot has not
synced yet, is stored `pending` and checked at the end of its workspace's next sync against the
listing just read (`apply_pending`): Databricks' reminder can come before tokenbot's first sync
of a new token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.databricks.records import GatewayError, TokenRecord, WorkspaceGateway
from bot.domain.tokens import AUTOSCOPE_COMPLETED, AUTOSCOPE_RUNNING
from bot.models import Event, EventStatus, Token

logger = logging.getLogger(__name__)

REMINDER = "autoscope.reminder"
ENFORCED = "autoscope.enforced"
TYPES = (REMINDER, ENFORCED)
SOURCES = ("webhook", "file")
OBSERVING_SCOPES = ("all-apis",)  # what a token has while Databricks observes it
MAX_ID = 200
MAX_TOKEN_ID = 100
TOKEN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_SCOPES = 100

GatewayFactory = Callable[[str], WorkspaceGateway]


class EventError(ValueError):
    """A malformed event: `field` names what is wrong, `message` says it in full."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.message = f"{field}: {problem}"


@dataclass(frozen=True, slots=True)
class AutoscopeEvent:
    id: str
    type: str
    workspace: str
    token_id: str
    enforcement_at: datetime | None
    inferred_scopes: tuple[str, ...] | None
    scopes: tuple[str, ...] | None
    previous_scopes: tuple[str, ...] | None
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Ingested:
    id: str
    duplicate: bool  # already stored: nothing was stored or applied this time
    applied: bool  # the token was known, Databricks confirmed the event, and the token carries it
    token_pk: int | None = None
    rejected: str | None = None  # why Databricks contradicts the event (stored as rejected)

    def as_dict(self) -> dict[str, Any]:
        if self.rejected is not None:
            return {"ok": False, "id": self.id, "duplicate": False, "rejected": True, "error": self.rejected}
        answer: dict[str, Any] = {"ok": True, "id": self.id, "duplicate": self.duplicate}
        if not self.duplicate:
            answer["applied"] = self.applied
            if not self.applied:
                answer["note"] = (
                    "not checked against Databricks yet; the event applies when a sync confirms it"
                )
        return answer


# ---------------------------------------------------------------------------------------------
# parsing


def parse_event(data: Any, *, workspaces: Collection[str], now: datetime | None = None) -> AutoscopeEvent:
    """Validate one decoded JSON event; raise EventError naming the first bad field. With `now`,
    a reminder whose enforcement date has passed is refused too."""
    if not isinstance(data, dict):
        raise EventError("body", f"must be a JSON object, not {_json_type(data)}")
    event_id = _text(data, "id", MAX_ID)
    kind = data.get("type")
    if kind is None:
        raise EventError("type", f"is required: {' or '.join(TYPES)}")
    if kind not in TYPES:
        raise EventError("type", f"must be {' or '.join(TYPES)} (got {_shown(kind)})")
    workspace = data.get("workspace")
    if workspace is None:
        raise EventError("workspace", "is required")
    if not isinstance(workspace, str) or workspace not in workspaces:
        known = ", ".join(sorted(workspaces)) or "none"
        raise EventError(
            "workspace", f"{_shown(workspace)} is not a configured workspace (configured: {known})"
        )
    token_id = _text(data, "token_id", MAX_TOKEN_ID)
    if not TOKEN_ID.fullmatch(token_id):  # it goes into a Databricks URL path: no "/", "..", controls
        raise EventError("token_id", f"{_shown(token_id)} is not a token id (letters, digits, . _ -)")
    enforcement_at = _time(data, "enforcement_at", required=kind == REMINDER)
    inferred = _scopes(data, "inferred_scopes", required=False)
    scopes = _scopes(data, "scopes", required=kind == ENFORCED)
    previous = _scopes(data, "previous_scopes", required=False)
    if kind == ENFORCED and not scopes:
        raise EventError("scopes", "must list the scopes the token has after enforcement")
    if kind == REMINDER and now is not None and enforcement_at is not None and enforcement_at < now:
        raise EventError(
            "enforcement_at",
            f"{enforcement_at:%Y-%m-%dT%H:%M:%SZ} is in the past: a reminder announces an enforcement "
            "still to come (send autoscope.enforced for one that happened)",
        )
    return AutoscopeEvent(
        id=event_id,
        type=kind,
        workspace=workspace,
        token_id=token_id,
        enforcement_at=enforcement_at,
        inferred_scopes=inferred,
        scopes=scopes,
        previous_scopes=previous,
        payload=dict(data),
    )


def _text(data: dict, field: str, limit: int) -> str:
    value = data.get(field)
    if value is None:
        raise EventError(field, "is required")
    if not isinstance(value, str):
        raise EventError(field, f"must be text, not {_json_type(value)}")
    value = value.strip()
    if not value:
        raise EventError(field, "must not be empty")
    if len(value) > limit:
        raise EventError(field, f"must be at most {limit} characters (got {len(value)})")
    return value


def _time(data: dict, field: str, required: bool) -> datetime | None:
    value = data.get(field)
    if value is None:
        if required:
            raise EventError(field, "is required: an ISO 8601 time such as 2026-12-01T00:00:00Z")
        return None
    if not isinstance(value, str):
        raise EventError(field, f"must be an ISO 8601 time as text, not {_json_type(value)}")
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise EventError(
            field, f"{_shown(value)} is not an ISO 8601 time such as 2026-12-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise EventError(
            field, f"{_shown(value)} has no time zone: add Z for UTC, as in 2026-12-01T00:00:00Z"
        )
    return moment.astimezone(UTC)


def _scopes(data: dict, field: str, required: bool) -> tuple[str, ...] | None:
    value = data.get(field)
    if value is None:
        if required:
            raise EventError(field, 'is required: a list of scope names such as ["sql"]')
        return None
    if not isinstance(value, list):
        raise EventError(field, f'must be a list of scope names such as ["sql"], not {_json_type(value)}')
    if len(value) > MAX_SCOPES:
        raise EventError(field, f"must list at most {MAX_SCOPES} scopes")
    for index, scope in enumerate(value):
        if not isinstance(scope, str) or not scope.strip():
            raise EventError(f"{field}[{index}]", f"must be a scope name, not {_shown(scope)}")
        if len(scope) > 100:
            raise EventError(f"{field}[{index}]", "must be at most 100 characters")
    return tuple(sorted({scope.strip() for scope in value}))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


# ---------------------------------------------------------------------------------------------
# storing and applying


def ingest(
    *,
    session: Session,
    event: AutoscopeEvent,
    source: str,
    now: datetime,
    gateway_for: GatewayFactory | None,
) -> Ingested:
    """Store the event once (its id is the idempotency key), check it against Databricks' own
    answer for the token (`gateway_for`), and apply it if the token is known and the check holds.

    An event Databricks contradicts is stored `rejected` with the reason and changes nothing. When
    Databricks cannot be read now (or `gateway_for` is None) the event is stored `pending`: the next
    sync of its workspace checks it against the listing it has just read (`apply_pending`)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    if _stored(session, event.id):
        return Ingested(id=event.id, duplicate=True, applied=False)
    read, live = _read_live(gateway_for, event)  # before the insert: no write lock held meanwhile
    row = Event(
        idempotency_key=event.id,
        source=source,
        kind=event.type,
        workspace=event.workspace,
        token_id=event.token_id,
        payload=dict(event.payload),
        received_at=now,
        status=EventStatus.PENDING,
    )
    try:
        with session.begin_nested():  # two deliveries at once: the unique key lets one through
            session.add(row)
            session.flush()
    except IntegrityError:
        return Ingested(id=event.id, duplicate=True, applied=False)
    if not read:
        return Ingested(id=event.id, duplicate=False, applied=False)
    token = _token(session, event.workspace, event.token_id)
    problem = contradiction(event, live)
    if problem is None and token is None:
        # Databricks has it, tokenbot has not synced it yet: the sync applies it (checked again).
        where = f"{event.token_id} in {event.workspace}"
        logger.info("event %s: token %s is not synced yet; kept for later", event.id, where)
        return Ingested(id=event.id, duplicate=False, applied=False)
    if problem is not None:
        _reject(row, problem, now)
        session.flush()
        return Ingested(id=event.id, duplicate=False, applied=False, rejected=problem)
    _apply(token, event, row, now)
    session.flush()
    logger.info(
        "event %s (%s) confirmed by Databricks and applied to token %s in %s",
        event.id,
        event.type,
        event.token_id,
        event.workspace,
    )
    return Ingested(id=event.id, duplicate=False, applied=True, token_pk=token.id)


def apply_pending(*, session: Session, workspace: str, now: datetime) -> int:
    """After a good sync of `workspace`: check the events still pending against the tokens as
    Databricks has just listed them, and apply (or reject) them; returns how many were applied."""
    rows = list(
        session.execute(
            select(Event)
            .where(Event.workspace == workspace, Event.processed_at.is_(None))
            .order_by(Event.received_at, Event.id)
        ).scalars()
    )
    applied = 0
    for row in rows:
        try:
            event = parse_event(row.payload, workspaces={row.workspace})
        except EventError as error:  # stored by an older version with other rules
            logger.warning("event %s cannot be applied any more: %s", row.idempotency_key, error.message)
            _reject(row, f"malformed: {error.message}", now)
            continue
        token = _token(session, row.workspace, row.token_id)
        listed = token if token is not None and token.gone_at is None else None
        problem = contradiction(event, listed)
        if problem is not None:
            _reject(row, problem, now)
            continue
        _apply(token, event, row, now)
        applied += 1
    if rows:
        session.flush()
    return applied


def contradiction(event: AutoscopeEvent, live: Token | TokenRecord | None) -> str | None:
    """Why Databricks' current answer for the token (`live`; None: it has no such token)
    contradicts the event, or None when it agrees."""
    where = f"token {event.token_id} in {event.workspace}"
    if live is None:
        return f"Databricks has no {where}"
    state, scopes = live.autoscope_state, sorted(live.scopes or ())
    if event.type == ENFORCED:
        if state == AUTOSCOPE_RUNNING:
            return f"Databricks still observes {where} (auto-scoping has not narrowed it)"
        if state != AUTOSCOPE_COMPLETED:
            return f"Databricks does not show {where} narrowed by auto-scoping (auto-scoping state {state})"
        if scopes != sorted(event.scopes or ()):
            return f"Databricks lists {where} with scopes {_names(scopes)}, not {_names(event.scopes or ())}"
    elif state is not None and state != AUTOSCOPE_RUNNING:
        return f"Databricks does not observe {where} any more (auto-scoping state {state})"
    return None


def _read_live(gateway_for: GatewayFactory | None, event: AutoscopeEvent) -> tuple[bool, TokenRecord | None]:
    """(read, the token as Databricks serves it now); read is False when it could not be asked."""
    if gateway_for is None:
        return False, None
    try:
        return True, gateway_for(event.workspace).get_token(event.token_id)
    except GatewayError as error:
        logger.warning(
            "event %s: cannot check it against Databricks now (%s); the next sync of %s does",
            event.id,
            error.message,
            event.workspace,
        )
        return False, None


def _reject(row: Event, reason: str, now: datetime) -> None:
    row.status, row.reason, row.processed_at = EventStatus.REJECTED, reason[:500], now
    logger.warning("event %s rejected: %s", row.idempotency_key, reason)


def _names(scopes: Sequence[str]) -> str:
    return ", ".join(scopes) or "none"


def _stored(session: Session, event_id: str) -> bool:
    return session.execute(select(Event.id).where(Event.idempotency_key == event_id)).first() is not None


def _token(session: Session, workspace: str, token_id: str) -> Token | None:
    query = (
        select(Token)
        .where(Token.workspace == workspace, Token.token_id == token_id)
        .execution_options(populate_existing=True)
    )
    return session.execute(query).scalar_one_or_none()


def _apply(token: Token, event: AutoscopeEvent, row: Event, now: datetime) -> None:
    if event.type == REMINDER:
        token.enforcement_at = event.enforcement_at
        if event.inferred_scopes is not None:
            token.inferred_scopes = list(event.inferred_scopes)
    else:
        _apply_enforced(token, event, row, now)
    row.processed_at, row.status = now, EventStatus.APPLIED


def _apply_enforced(token: Token, event: AutoscopeEvent, row: Event, now: datetime) -> None:
    scopes = list(event.scopes or ())
    when = event.enforcement_at or row.received_at or now
    if event.enforcement_at is not None:
        token.enforcement_at = event.enforcement_at
    already = (
        token.narrowed_at is not None
        and sorted(token.scopes or ()) == scopes
        and token.autoscope_state == AUTOSCOPE_COMPLETED
    )
    if already:
        return  # a sync saw this narrowing first
    before = sorted(token.scopes or ())
    if before and before != scopes:  # tokenbot's own record beats the event's claim
        previous = before
    elif event.previous_scopes:
        previous = list(event.previous_scopes)
    else:
        previous = list(OBSERVING_SCOPES)
    token.previous_scopes = previous
    token.scopes = scopes
    token.inferred_scopes = list(event.inferred_scopes or scopes)
    token.autoscope_state = AUTOSCOPE_COMPLETED
    token.narrowed_at = min(when, now)
