"""Auto-scoping events, from the webhook (`POST /events/autoscope`) and from files
(`tokenbot events import`): validated, stored once, applied to the token.

The shape is DESIGN.md section 5::

    {"id": "evt-123", "type": "autoscope.reminder", "workspace": "prod", "token_id": "abc",
     "enforcement_at": "2026-12-01T00:00:00Z", "inferred_scopes": ["sql"]}

- `id` (text, up to 200 characters) makes delivery idempotent: the `event` table's unique key.
  The same id again is reported as a duplicate and nothing is stored or applied twice.
- `type` is `autoscope.reminder` or `autoscope.enforced`.
- `workspace` must be one of the configured workspaces; `token_id` is text.
- `enforcement_at`: an ISO 8601 time with its offset (`Z` or `+00:00`), or a date (midnight UTC).
  Required for `autoscope.reminder`; for `autoscope.enforced` it is when scopes were applied
  (default: when the event arrived).
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

An event about a token tokenbot does not know yet is stored with `processed_at` empty and
applied when a sync lists the token (`apply_pending`, called at the end of each workspace's
sync): Databricks' reminder can come before tokenbot's first sync of a new token.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.domain.policy import AUTOSCOPE_COMPLETED
from bot.models import Event, Token

logger = logging.getLogger(__name__)

REMINDER = "autoscope.reminder"
ENFORCED = "autoscope.enforced"
TYPES = (REMINDER, ENFORCED)
SOURCES = ("webhook", "file")
OBSERVING_SCOPES = ("all-apis",)  # what a token has while Databricks observes it
MAX_ID = 200
MAX_TOKEN_ID = 100
MAX_SCOPES = 100


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
    applied: bool  # the token was known and now carries the event
    token_pk: int | None = None

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"ok": True, "id": self.id, "duplicate": self.duplicate}
        if not self.duplicate:
            answer["applied"] = self.applied
            if not self.applied:
                answer["note"] = "the token is not known yet; the event applies when a sync lists it"
        return answer


# ---------------------------------------------------------------------------------------------
# parsing


def parse_event(data: Any, *, workspaces: Collection[str]) -> AutoscopeEvent:
    """Validate one decoded JSON event; raise EventError naming the first bad field."""
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
    enforcement_at = _time(data, "enforcement_at", required=kind == REMINDER)
    inferred = _scopes(data, "inferred_scopes", required=False)
    scopes = _scopes(data, "scopes", required=kind == ENFORCED)
    previous = _scopes(data, "previous_scopes", required=False)
    if kind == ENFORCED and not scopes:
        raise EventError("scopes", "must list the scopes the token has after enforcement")
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


def ingest(*, session: Session, event: AutoscopeEvent, source: str, now: datetime) -> Ingested:
    """Store the event once (its id is the idempotency key) and apply it if the token is known."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    if _stored(session, event.id):
        return Ingested(id=event.id, duplicate=True, applied=False)
    row = Event(
        idempotency_key=event.id,
        source=source,
        kind=event.type,
        workspace=event.workspace,
        token_id=event.token_id,
        payload=dict(event.payload),
        received_at=now,
    )
    try:
        with session.begin_nested():  # two deliveries at once: the unique key lets one through
            session.add(row)
            session.flush()
    except IntegrityError:
        return Ingested(id=event.id, duplicate=True, applied=False)
    token = _token(session, event.workspace, event.token_id)
    if token is None:
        logger.info(
            "event %s: token %s in %s is not known yet; kept for later",
            event.id,
            event.token_id,
            event.workspace,
        )
        return Ingested(id=event.id, duplicate=False, applied=False)
    _apply(token, event, row, now)
    session.flush()
    logger.info(
        "event %s (%s) applied to token %s in %s", event.id, event.type, event.token_id, event.workspace
    )
    return Ingested(id=event.id, duplicate=False, applied=True, token_pk=token.id)


def apply_pending(*, session: Session, workspace: str, now: datetime) -> int:
    """Apply the stored events of tokens that were not known when the events came; returns how many."""
    rows = list(
        session.execute(
            select(Event)
            .where(Event.workspace == workspace, Event.processed_at.is_(None))
            .order_by(Event.received_at, Event.id)
        ).scalars()
    )
    applied = 0
    for row in rows:
        token = _token(session, row.workspace, row.token_id)
        if token is None:
            continue
        try:
            event = parse_event(row.payload, workspaces={row.workspace})
        except EventError as error:  # stored by an older version with other rules
            logger.warning("event %s cannot be applied any more: %s", row.idempotency_key, error.message)
            row.processed_at = now
            continue
        _apply(token, event, row, now)
        applied += 1
    if rows:
        session.flush()
    return applied


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
    row.processed_at = now


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
    if event.previous_scopes:
        previous = list(event.previous_scopes)
    elif before and before != scopes:
        previous = before
    else:
        previous = list(OBSERVING_SCOPES)
    token.previous_scopes = previous
    token.scopes = scopes
    token.inferred_scopes = list(event.inferred_scopes or scopes)
    token.autoscope_state = AUTOSCOPE_COMPLETED
    token.narrowed_at = min(when, now)
