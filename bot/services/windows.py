"""What one page of an admin answer shows, out of an estate of 100,000 tokens: chosen in SQL
where the rule is a stored date, evaluated (`bot.domain.policy.evaluate`) only where it is not.

`stale` filters on stored dates: SQL counts, orders and cuts it. Every deadline `evaluate` gives
is a stored date plus a number of days (an exemption aside), so `due_tests` says in SQL which
tokens have one due by a horizon: `upcoming` and the App Home count deadlines with it and
evaluate only the few tokens that can be among the first rows. `risky` works out every token's
findings (some are rules SQL cannot apply, such as the comment patterns) and keeps the worst.
Results are exactly those of evaluating every token (tests/services/test_windows.py), and memory
stays small: what is kept is a page's worth.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, case, exists, false, func, literal, or_, select
from sqlmodel import Session

from bot.domain.deadlines import Deadline, DeadlineKind
from bot.domain.findings import FINDING_SEVERITY
from bot.domain.policy import Policy
from bot.domain.tokens import AUTOSCOPE_RUNNING, KNOWN_AUTOSCOPE_STATES
from bot.models import Exemption, Token, UTCDateTime
from bot.services import report, scans
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


def observation_start(policy: Policy, now: datetime) -> Any:
    """When auto-scoping's watch of a token started (policy._autoscope_deadline): the stored
    start, else the rollout date for a token created before it, else the creation."""
    begun = created(now)
    if policy.autoscope_rollout_date is not None:
        rollout = _moment(datetime.combine(policy.autoscope_rollout_date, time(), UTC))
        begun = case((begun < rollout, rollout), else_=begun)
    return func_coalesce(Token.observation_started_at, begun)


def _org_exempt(now: datetime, after: datetime | None = None) -> Any:
    """The token has an approved, running exemption from the organisation's rule (ending after
    `after` when given): `report._active_exemptions`, as `policy._exempt_until` reads them."""
    test = [
        Exemption.token_pk == Token.id,
        Exemption.deadline_kind == DeadlineKind.ORG_POLICY.value,
        Exemption.approved_by.is_not(None),
        Exemption.until > _moment(now),
    ]
    if after is not None:
        test.append(Exemption.until > _moment(after))
    return exists().where(*test)


def due_tests(policy: Policy, now: datetime, horizon: datetime) -> dict[DeadlineKind, Any]:
    """For each kind of deadline the rules give, the SQL test "the token has one due at or before
    `horizon`": `policy.evaluate` on the stored dates. Every deadline is a stored date plus a
    number of days, so each test compares that date with the horizon minus the days."""
    idle = idle_since(now)
    tests: dict[DeadlineKind, Any] = {}
    tests[DeadlineKind.AUTOSCOPE_ENFORCEMENT] = or_(*_autoscope_tests(policy, now, horizon))
    tests[DeadlineKind.EXPIRY] = Token.expires_at <= _moment(horizon)
    if policy.inactivity_revocation_days > 0:
        tests[DeadlineKind.INACTIVITY_REVOCATION] = _before(idle, horizon, policy.inactivity_revocation_days)
    org = []
    if policy.org_max_inactive_days > 0:
        org.append(_before(idle, horizon, policy.org_max_inactive_days))
    if policy.org_max_lifetime_days > 0:
        org.append(_before(created(now), horizon, policy.org_max_lifetime_days))
    if org:
        # An exemption moves the deadline to its end: due by the horizon unless one ends later.
        tests[DeadlineKind.ORG_POLICY] = and_(or_(*org), ~_org_exempt(now, after=horizon))
    return tests


def _autoscope_tests(policy: Policy, now: datetime, horizon: datetime) -> tuple[Any, Any]:
    """While auto-scoping observes the token (`tokens.is_observing`): the enforcement Databricks
    announced, or else the observation start plus the observation days, due by `horizon`."""
    observing_states = or_(
        Token.autoscope_state.is_(None), Token.autoscope_state.not_in(sorted(KNOWN_AUTOSCOPE_STATES))
    )
    announced = and_(
        Token.enforcement_at <= _moment(horizon),
        or_(Token.autoscope_state == AUTOSCOPE_RUNNING, observing_states),
    )
    derived = and_(
        Token.enforcement_at.is_(None),
        Token.autoscope_state == AUTOSCOPE_RUNNING,
        _before(observation_start(policy, now), horizon, policy.autoscope_observation_days),
    )
    return announced, derived


def due_by(policy: Policy, now: datetime, horizon: datetime) -> Any:
    """The token has a deadline due at or before `horizon`."""
    return or_(*due_tests(policy, now, horizon).values())


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
        *by_id(session),
    )


def stale(
    *, session: Session, policy: Policy, now: datetime, days: int, keep: int, whole: int = 0
) -> tuple[int, list[TokenView]]:
    """How many live tokens are unused for `days` days, and the first `keep` of them (all of them
    when they are `whole` or fewer), the longest unused first: counted and chosen in SQL on the
    narrow date index, then read and evaluated."""
    unused = [Token.gone_at.is_(None), unused_since(now, days)]
    total = session.execute(select(func.count()).select_from(Token).where(*unused)).scalar_one()
    keep = total if total <= whole else keep
    chosen = select(Token.id).where(*unused).order_by(*longest_unused_first(session)).limit(keep)
    pks = list(session.execute(chosen).scalars())
    views = {v.pk: v for v in report.iter_views(session=session, policy=policy, now=now, token_pks=pks)}
    return total, [views[pk] for pk in pks if pk in views]


def by_id(session: Session) -> list[Any]:
    """Workspace, then token id: the order ties between equal dates keep everywhere."""
    return by_text(session, Token.workspace, Token.token_id)


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
    and the first `keep` of them with their tokens, nearest first (all of them when they are
    `whole` or fewer)."""

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
    whole: int = 0,
    workspace: str | None = None,
) -> Upcoming:
    """Counted in SQL; the first `keep` deadlines found by evaluating a few candidates only.

    Each deadline grows with one stored date (the expiry itself; the last use or creation plus the
    inactivity days; the creation plus the lifetime; the announced enforcement, or the observation
    start plus its days). So the first `keep` deadlines of the estate are among the first `keep`
    tokens in the order of each of those dates (ties in workspace and id order, as the answer
    sorts them). Tokens with an exemption from the organisation's rule are the one exception
    (their deadline is the exemption's end): they are always candidates. The candidates, at most
    `keep` per date and those, are evaluated.
    """
    horizon = now + timedelta(days=days)
    live = [Token.gone_at.is_(None)] + ([Token.workspace == workspace] if workspace else [])
    tests = due_tests(policy, now, horizon)
    by_now = due_tests(policy, now, now)
    found = Upcoming()
    counted = session.execute(
        select(
            *[func.count(case((test, 1))) for test in tests.values()],
            func.count(case((or_(*tests.values()), 1))),
            *[func.count(case((test, 1))) for test in by_now.values()],
        ).where(*live)
    ).one()
    due_counts = dict(zip(tests, counted[: len(tests)], strict=True))
    found.tokens = counted[len(tests)]
    found.overdue = sum(counted[len(tests) + 1 :])
    total = sum(due_counts.values())
    keep = total if total <= whole else keep  # a short list whole
    if keep <= 0 or not found.tokens:
        found.counts = {kind: n for kind, n in due_counts.items() if n}
        return found

    if total <= keep:  # the whole list: its tokens are exactly those due by the horizon
        due = report.iter_views(
            session=session, policy=policy, now=now, workspace=workspace, where=[or_(*tests.values())]
        )
        return _first_rows(found, due, due_counts, now, days, keep)
    idle = idle_since(now)
    announced, derived = _autoscope_tests(policy, now, horizon)
    orders = [
        (tests[DeadlineKind.EXPIRY], Token.expires_at),
        (announced, Token.enforcement_at),
        (derived, observation_start(policy, now)),
    ]
    if DeadlineKind.INACTIVITY_REVOCATION in tests:
        orders.append((tests[DeadlineKind.INACTIVITY_REVOCATION], idle))
    if DeadlineKind.ORG_POLICY in tests:
        unexempt = and_(tests[DeadlineKind.ORG_POLICY], ~_org_exempt(now))
        orders += [(unexempt, idle), (unexempt, created(now))]
    candidates: set[int] = set()
    tie = by_id(session)
    for test, date in orders:
        query = select(Token.id).where(*live, test).order_by(date, *tie).limit(keep)
        candidates.update(session.execute(query).scalars())
    exempt = select(Token.id).where(*live, _org_exempt(now))
    candidates.update(session.execute(exempt).scalars())

    views = report.iter_views(
        session=session, policy=policy, now=now, workspace=workspace, token_pks=candidates
    )
    return _first_rows(found, views, due_counts, now, days, keep)


def _first_rows(
    found: Upcoming,
    views: Iterable[TokenView],
    due_counts: dict[DeadlineKind, int],
    now: datetime,
    days: int,
    keep: int,
) -> Upcoming:
    """The first `keep` deadlines of these views, nearest first, and the kinds in that order."""
    rows = []
    for view in views:
        rows += [
            ((deadline.due_at, view.workspace, view.token_id), deadline, view)
            for deadline in view.evaluation.due_within(now, days)
        ]
    rows.sort(key=lambda row: row[0])  # stable: one token's own deadlines keep evaluate's order
    found.first = [(deadline, view) for _, deadline, view in rows[:keep]]
    # Kinds in the order the nearest of each comes (each kind's nearest is a candidate).
    order: list[DeadlineKind] = []
    for _, deadline, _ in rows:
        if deadline.kind not in order:
            order.append(deadline.kind)
    found.counts = {kind: due_counts[kind] for kind in order if due_counts.get(kind)}
    return found


# ---------------------------------------------------------------------------------------------
# risky: every token evaluated, the worst kept


Ranking = tuple[int, list[tuple[tuple[int, int, str, str], int]]]  # flagged, [(rank, pk)] worst first


def risky(
    *, session: Session, policy: Policy, now: datetime, keep: int, whole: int = 0
) -> tuple[int, list[TokenView]]:
    """How many live tokens have a finding, and the worst `keep` of them (all of them when they
    are `whole` or fewer), worst first: `rank_by_risk` in this process, then `worst_views`."""
    with scans.one_at_a_time():
        ranking = rank_by_risk(session=session, policy=policy, now=now, keep=max(keep, whole))
    return worst_views(session=session, policy=policy, now=now, ranking=ranking, keep=keep, whole=whole)


def rank_by_risk(*, session: Session, policy: Policy, now: datetime, keep: int) -> Ranking:
    """How many live tokens have a finding, and the rank and pk of the worst `keep`, worst first.
    Every token's findings are worked out (not its deadlines): a scan of the whole estate, which
    `/tokens risky` runs in a worker process (bot/services/scans.py)."""
    flagged = 0

    def ranked() -> Iterator[tuple[tuple[int, int, str, str], int]]:
        nonlocal flagged
        for pk, workspace, token_id, findings in report.iter_findings(
            session=session, policy=policy, now=now
        ):
            if findings:
                flagged += 1
                ranks = [FINDING_SEVERITY[f.code] for f in findings]
                yield (min(ranks), -len(ranks), workspace, token_id), pk

    worst = smallest(ranked(), keep)  # (key, pk) pairs: small however many
    return flagged, worst


def worst_views(
    *, session: Session, policy: Policy, now: datetime, ranking: Ranking, keep: int, whole: int = 0
) -> tuple[int, list[TokenView]]:
    """The views of a ranking's worst `keep` (all it holds when the flagged are `whole` or fewer)."""
    flagged, worst = ranking
    if flagged > whole:
        worst = worst[:keep]
    kept = [pk for _, pk in worst]
    views = {v.pk: v for v in report.iter_views(session=session, policy=policy, now=now, token_pks=kept)}
    return flagged, [views[pk] for _, pk in worst if pk in views]


def smallest(items: Iterable[T], keep: int, key: Callable[[T], Any] | None = None) -> list[T]:
    """The `keep` smallest items, in order, holding no more than that many at a time (a stable
    `sorted(items)[:keep]`)."""
    key = key or (lambda item: item[0])
    if keep <= 0:
        deque(items, maxlen=0)  # read them all all the same: the caller counts as they pass
        return []
    numbered = ((key(item), number, item) for number, item in enumerate(items))
    return [item for _, _, item in heapq.nsmallest(keep, numbered, key=lambda entry: entry[:2])]
