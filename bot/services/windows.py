"""What one page of an admin answer shows, out of an estate of 100,000 tokens: chosen in SQL
where the rule is a stored date, evaluated (`bot.domain.policy.evaluate`) only where it is not.

A filter on a stored field (`stale`) is SQL alone: count, order and page. A filter on an
evaluated deadline (`upcoming`, the App Home's counts) first narrows in SQL with a conservative
test, `may_be_due_by`: a token it drops can have no deadline by then; the survivors are
evaluated one by one, and only counts and the first rows are kept. `risky` evaluates every live
token (its findings include a comment matched by regular expressions), keeping the worst few.
So the results are exactly what evaluating every token would give, and memory stays small.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, false, func, literal, or_
from sqlmodel import Session

from bot.domain.deadlines import Deadline, DeadlineKind
from bot.domain.findings import FINDING_SEVERITY
from bot.domain.policy import Policy
from bot.domain.tokens import AUTOSCOPE_RUNNING
from bot.models import Token, UTCDateTime
from bot.services import report
from bot.services.report import TokenView

T = TypeVar("T")


def _moment(value: datetime) -> Any:
    return literal(value, UTCDateTime)


def _before(column: Any, horizon: datetime, days: int) -> Any:
    """`column + days <= horizon`, as a comparison of the stored date (an index can serve it)."""
    try:
        return column <= _moment(horizon - timedelta(days=days))
    except OverflowError:  # the rule's days reach past the calendar: never due (policy._plus)
        return false() if days > 0 else column.is_not(None)


def created(now: datetime) -> Any:
    """The creation the rules count from (`report._view`): Databricks' date, else when tokenbot
    first saw the token, else now."""
    return func_coalesce(Token.created_at, Token.first_seen_at, _moment(now))


def idle_since(now: datetime) -> Any:
    """The last use, else the creation: where the inactivity rules count from."""
    return func_coalesce(Token.last_used_on, Token.created_at, Token.first_seen_at, _moment(now))


def func_coalesce(*columns: Any) -> Any:
    return func.coalesce(*columns, type_=UTCDateTime)


def may_be_due_by(policy: Policy, now: datetime, horizon: datetime) -> Any:
    """True for every live token that has a deadline due at or before `horizon` (and a few that
    have not). Each rule of `evaluate` has its test: an exemption only moves the organisation's
    deadline later, and auto-scoping starts no earlier than the token's creation (the rollout
    date only moves it later), so the tests are on dates that bound each deadline from below."""
    tests = [Token.expires_at <= _moment(horizon), Token.enforcement_at <= _moment(horizon)]
    idle = idle_since(now)
    if policy.inactivity_revocation_days > 0:
        tests.append(_before(idle, horizon, policy.inactivity_revocation_days))
    if policy.org_max_inactive_days > 0:
        tests.append(_before(idle, horizon, policy.org_max_inactive_days))
    if policy.org_max_lifetime_days > 0:
        tests.append(_before(created(now), horizon, policy.org_max_lifetime_days))
    start = func_coalesce(Token.observation_started_at, Token.created_at, Token.first_seen_at, _moment(now))
    observed = _before(start, horizon, policy.autoscope_observation_days)
    tests.append(and_(Token.autoscope_state == AUTOSCOPE_RUNNING, observed))
    return or_(*tests)


# ---------------------------------------------------------------------------------------------
# stale: SQL alone


def unused_since(now: datetime, days: int) -> Any:
    """`blocks.commands.unused_since` in SQL: last used `days` ago or earlier, or never used and
    created that long ago (a token with no creation date is never stale)."""
    limit = _moment(now - timedelta(days=days))
    return or_(
        Token.last_used_on <= limit,
        and_(Token.last_used_on.is_(None), Token.created_at.is_not(None), Token.created_at <= limit),
    )


def longest_unused_first(session: Session) -> tuple[Any, ...]:
    """The longest unused first: used ones after the never-used, each by date, workspace, id."""
    return (
        Token.last_used_on.is_not(None),
        func_coalesce(Token.last_used_on, Token.created_at),
        *by_text(session, Token.workspace, Token.token_id),
    )


def by_text(session: Session, *columns: Any) -> list[Any]:
    """Columns ordered as Python orders strings (by code point): SQLite's own order; PostgreSQL's
    depends on the database's locale unless told "C"."""
    if session.get_bind().dialect.name == "postgresql":
        return [column.collate("C") for column in columns]
    return list(columns)


# ---------------------------------------------------------------------------------------------
# upcoming and the Home's counts: narrowed in SQL, evaluated


@dataclass
class Upcoming:
    """Deadlines due by a horizon: how many of each kind, on how many tokens, how many overdue,
    and the first `keep` of them with their tokens (nearest first)."""

    counts: dict[DeadlineKind, int] = field(default_factory=dict)
    tokens: int = 0
    overdue: int = 0
    first: list[tuple[Deadline, TokenView]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def upcoming(
    *,
    session: Session,
    policy: Policy,
    now: datetime,
    days: int,
    keep: int,
    workspace: str | None = None,
    where: Iterable[Any] = (),
) -> Upcoming:
    horizon = now + timedelta(days=days)
    found = Upcoming()
    candidates = report.iter_views(
        session=session,
        policy=policy,
        now=now,
        workspace=workspace,
        where=[may_be_due_by(policy, now, horizon), *where],
    )

    first_of_kind: dict[DeadlineKind, tuple[datetime, str, str, int]] = {}

    def rows() -> Iterator[tuple[tuple[datetime, str, str], Deadline, TokenView]]:
        for view in candidates:
            due = view.evaluation.due_within(now, days)
            if due:
                found.tokens += 1
            for index, deadline in enumerate(due):
                kind = deadline.kind
                found.counts[kind] = found.counts.get(kind, 0) + 1
                found.overdue += deadline.due_at <= now
                key = (deadline.due_at, view.workspace, view.token_id)
                if kind not in first_of_kind or (*key, index) < first_of_kind[kind]:
                    first_of_kind[kind] = (*key, index)
                yield key, deadline, view

    # Deadlines with equal keys are of one token: its own order (evaluate's) breaks the tie.
    first = smallest(rows(), keep)
    found.first = [(deadline, view) for _, deadline, view in first]
    # Kinds in the order the nearest of each comes, as a list of all of them would show them.
    found.counts = {kind: found.counts[kind] for kind in sorted(first_of_kind, key=first_of_kind.__getitem__)}
    return found


# ---------------------------------------------------------------------------------------------
# risky: every token evaluated, the worst kept


def severity_key(view: TokenView) -> tuple[int, int, str, str]:
    """Worst finding first, then more findings first."""
    ranks = [FINDING_SEVERITY[f.code] for f in view.evaluation.findings]
    return (min(ranks, default=len(FINDING_SEVERITY)), -len(ranks), view.workspace, view.token_id)


def risky(*, session: Session, policy: Policy, now: datetime, keep: int) -> tuple[int, list[TokenView]]:
    """How many live tokens have a finding, and the worst `keep` of them, worst first."""
    flagged = 0

    def keyed() -> Iterator[tuple[tuple[int, int, str, str], TokenView]]:
        nonlocal flagged
        for view in report.iter_views(session=session, policy=policy, now=now):
            if view.evaluation.findings:
                flagged += 1
                yield severity_key(view), view

    worst = [view for _, view in smallest(keyed(), keep, key=lambda pair: pair[0])]
    return flagged, worst


def smallest(items: Iterable[T], keep: int, key: Callable[[T], Any] | None = None) -> list[T]:
    """The `keep` smallest items, in order, holding no more than that many at a time (a stable
    `sorted(items)[:keep]`)."""
    key = key or (lambda item: item[0])
    if keep <= 0:
        deque(items, maxlen=0)  # read them all all the same: the caller counts as they pass
        return []
    numbered = ((key(item), number, item) for number, item in enumerate(items))
    return [item for _, _, item in heapq.nsmallest(keep, numbered, key=lambda entry: entry[:2])]
