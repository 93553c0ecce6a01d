"""Enforcement's circuit breaker, kept in the database so it holds across runs and processes.

The breaker's state is the latest applied `enforcement_trip` or `enforcement_resume` decision row
(no token: `token_pk` is null): tripped after a trip, armed after a resume or when neither exists.
The enforcement run trips it (`trip`) when more tokens are due than `max_revocations_per_run`, or
when they would take the revocations of the last 24 hours over `max_revocations_per_day`; only an
admin re-arms it (`resume`, from `/tokens enforcement resume`). Refused attempts are rows too.

The daily limit weighs the revocations since the later of 24 hours ago and the last resume: a
resume lets the next run go on, and a run with more due than `max_revocations_per_run` trips it
again (raise the limit, or revoke by hand).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from bot.domain.deadlines import DeadlineKind
from bot.domain.policy import Policy
from bot.models import Decision
from bot.services import decisions

TRIP, RESUME = "enforcement_trip", "enforcement_resume"
DAY = timedelta(hours=24)
MAX_LISTED = 500  # tokens kept in a trip row: enough to act on, small enough for one JSON value


@dataclass(frozen=True, slots=True)
class BreakerState:
    tripped: bool
    why: str | None  # the trip's reason, while tripped
    since: datetime | None  # when it was tripped or last resumed
    by: str | None  # who resumed it last ("tokenbot" trips it)
    revoked_last_day: int  # revocations by enforcement in the last 24 hours
    counted: int  # those since the last resume: what the daily limit weighs (a resume starts afresh)


@dataclass(frozen=True, slots=True)
class ResumeOutcome:
    status: str  # applied / refused
    reason: str | None  # refused: not_admin / not_tripped
    state: BreakerState


def state(*, session: Session, now: datetime) -> BreakerState:
    latest = session.execute(
        select(Decision)
        .where(Decision.action.in_((TRIP, RESUME)), Decision.status == decisions.APPLIED)
        .order_by(Decision.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    revoked = revocations_since(session=session, since=now - DAY)
    if latest is None:
        return BreakerState(False, None, None, None, revoked, revoked)
    tripped = latest.action == TRIP
    why = latest.parameters.get("reason") if tripped else None
    counted = revoked
    if not tripped and latest.created_at > now - DAY:
        counted = revocations_since(session=session, since=latest.created_at)
    return BreakerState(tripped, why, latest.created_at, latest.actor_slack_id, revoked, counted)


def revocations_since(*, session: Session, since: datetime) -> int:
    """Revocations enforcement applied since `since` (dry runs and people's own revocations aside)."""
    rows = session.execute(
        select(Decision.parameters).where(
            Decision.action == decisions.REVOKE,
            Decision.actor_role == decisions.TOKENBOT_ROLE,
            Decision.status == decisions.APPLIED,
            Decision.created_at >= since,
        )
    ).scalars()
    return sum(
        1
        for parameters in rows
        if parameters.get("deadline_kind") == DeadlineKind.ORG_POLICY and not parameters.get("dry_run")
    )


def trips(*, policy: Policy, due: int, counted: int) -> str | None:
    """Why a run with `due` tokens to revoke must trip the breaker, or None. `counted`: the
    revocations the daily limit already weighs (`BreakerState.counted`)."""
    if due > policy.max_revocations_per_run:
        return (
            f"{due} tokens are due at once, more than policy.max_revocations_per_run "
            f"({policy.max_revocations_per_run})"
        )
    if counted + due > policy.max_revocations_per_day:
        return (
            f"{due} tokens are due after {counted} revoked in the last 24 hours, more than "
            f"policy.max_revocations_per_day ({policy.max_revocations_per_day})"
        )
    return None


def trip(
    *, session: Session, reason: str, would_revoke: Sequence[dict[str, Any]], now: datetime, dry_run: bool
) -> Decision:
    """Stop enforcement until an admin resumes it; the row keeps why and what it held back."""
    row = Decision(
        token_pk=None,
        action=TRIP,
        actor_slack_id=decisions.TOKENBOT.slack_id,
        actor_role=decisions.TOKENBOT_ROLE,
        parameters={
            "reason": reason,
            "due": len(would_revoke),
            "would_revoke": list(would_revoke[:MAX_LISTED]),
            "dry_run": dry_run,
        },
        status=decisions.APPLIED,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def resume(*, session: Session, actor: decisions.Actor, now: datetime) -> ResumeOutcome:
    """An admin re-arms the breaker. Anyone else, or a breaker that is not tripped, is refused;
    every attempt is recorded."""
    current = state(session=session, now=now)
    refused = "not_admin" if not actor.is_admin else "not_tripped" if not current.tripped else None
    session.add(
        Decision(
            token_pk=None,
            action=RESUME,
            actor_slack_id=actor.slack_id,
            actor_role=decisions.ADMIN if actor.is_admin else decisions.OTHER,
            parameters={"refused": refused} if refused else {"tripped_because": current.why},
            status=decisions.REFUSED if refused else decisions.APPLIED,
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    if refused:
        return ResumeOutcome(decisions.REFUSED, refused, current)
    return ResumeOutcome(decisions.APPLIED, None, state(session=session, now=now))
