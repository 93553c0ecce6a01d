"""The channel digest: what is coming, who has not answered, what was decided, what is new and
risky, and what is broken, in one message to `slack.digest_channel`.

`build()` reads the database into a `Digest` (plain data, no Slack); `bot/slack/blocks/digest.py`
renders it and `bot/slack/blocks/chart.py` draws its chart. `run()` builds, posts through a
`DigestPoster` and records the post, so the next digest reports what happened since this one.

Choices made here:

- "Since the last digest" is since the last recorded `digestpost`; the first digest looks back a
  week (`FIRST_DIGEST_LOOKBACK`).
- Upcoming deadlines are those due after now and within `HORIZON_DAYS`, grouped by the day they
  fall on in `slack.digest_timezone`; a token with two deadlines in the window shows under both.
- Unanswered: escalations (`notification` rows of step "escalation" that were sent) whose deadline
  is still ahead, whose token is live, and that no decision settled since.
- A new risky token was first seen since the last digest and has a finding in `RISKY_FINDINGS`
  (an unclear comment or a service principal owner alone is not a risk worth a channel's time).
- Overdue: tokens past tokenbot's own policy deadline, listed only when `policy.enforce` is off
  (with it on, the enforcement job revokes them).
- Extensions: every exemption granted since the last digest (which token, asked by whom, until when,
  approved by whom), owners' own ones included: an owner may extend their own deadline without an
  admin up to the policy's limits, so the admins see each one here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bot.db import session_scope
from bot.domain.deadlines import DeadlineKind
from bot.domain.findings import FINDING_SEVERITY, Finding
from bot.domain.policy import Policy
from bot.models import (
    Decision,
    DigestPost,
    Exemption,
    Notification,
    NotificationStatus,
    Step,
    Token,
    Workspace,
    WorkspaceStatus,
)
from bot.services import decisions, report
from bot.services.ports import DigestPoster
from bot.services.report import TokenView
from bot.services.vocabulary import HORIZON_DAYS

CHART_DAYS = 30
FIRST_DIGEST_LOOKBACK = timedelta(days=7)
# Risky enough for the digest: every finding from the worst down to "no expiry" in the domain's
# one severity order (the two below it, service principal and junk comment, are hygiene).
RISKY_FINDINGS = frozenset(
    code for code, rank in FINDING_SEVERITY.items() if rank <= FINDING_SEVERITY[Finding.NO_EXPIRY]
)
KIND_ORDER = (
    DeadlineKind.AUTOSCOPE_ENFORCEMENT,
    DeadlineKind.EXPIRY,
    DeadlineKind.INACTIVITY_REVOCATION,
    DeadlineKind.ORG_POLICY,
)


# ---------------------------------------------------------------------------------------------
# what a digest holds


@dataclass(frozen=True, slots=True)
class TokenRef:
    workspace: str
    token_id: str
    comment: str
    owner: str | None  # email of a user, application id of a service principal
    owner_slack_id: str | None

    @classmethod
    def of(cls, view: TokenView) -> TokenRef:
        return cls(view.workspace, view.token_id, view.comment, view.owner, view.owner_slack_id)


@dataclass(frozen=True, slots=True)
class DueToken:
    token: TokenRef
    kind: DeadlineKind
    due_at: datetime


@dataclass(frozen=True, slots=True)
class DayGroup:
    """The deadlines falling on one day, by kind (in `KIND_ORDER`), nearest first in each."""

    day: date
    by_kind: tuple[tuple[DeadlineKind, tuple[DueToken, ...]], ...]

    @property
    def count(self) -> int:
        return sum(len(tokens) for _, tokens in self.by_kind)


@dataclass(frozen=True, slots=True)
class Unanswered:
    token: TokenRef
    kind: DeadlineKind
    due_at: datetime
    escalated_at: datetime | None


@dataclass(frozen=True, slots=True)
class DecisionLine:
    action: str
    status: str
    actor_slack_id: str
    token: TokenRef | None
    at: datetime | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Extension:
    token: TokenRef
    kind: str  # a DeadlineKind value
    until: datetime
    requested_by: str
    approved_by: str | None
    granted_at: datetime | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RiskyToken:
    token: TokenRef
    findings: tuple[Finding, ...]  # worst first
    first_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class FailingWorkspace:
    name: str
    status: str  # stale / held / never
    last_success_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class Digest:
    now: datetime
    since: datetime
    tz: str
    days: tuple[DayGroup, ...] = ()
    unanswered: tuple[Unanswered, ...] = ()
    decision_counts: tuple[tuple[str, str, int], ...] = ()  # (action, status, count), refused left out
    refused: int = 0
    decision_lines: tuple[DecisionLine, ...] = ()  # what changed something, newest first
    new_risky: tuple[RiskyToken, ...] = ()
    failing_workspaces: tuple[FailingWorkspace, ...] = ()
    overdue: tuple[DueToken, ...] = ()  # org_policy, when enforcement is off
    extensions: tuple[Extension, ...] = ()  # every exemption granted since, oldest first
    enforce: bool = False
    chart: tuple[tuple[date, tuple[tuple[DeadlineKind, int], ...]], ...] = field(default=())

    @property
    def upcoming_count(self) -> int:
        return sum(group.count for group in self.days)

    @property
    def decisions_count(self) -> int:
        return sum(count for _, _, count in self.decision_counts)

    @property
    def is_empty(self) -> bool:
        return not (
            self.days
            or self.unanswered
            or self.decision_counts
            or self.new_risky
            or self.failing_workspaces
            or self.overdue
            or self.extensions
        )

    @property
    def has_chart_data(self) -> bool:
        return any(counts for _, counts in self.chart)

    def summary(self) -> str:
        """One line, for logs and the answer to `/tokens digest`."""
        if self.is_empty:
            return f"Nothing due in the next {HORIZON_DAYS} days and nothing new since the last digest."
        parts = [
            _count(self.upcoming_count, "deadline") + f" in the next {HORIZON_DAYS} days",
            _count(len(self.unanswered), "unanswered escalation"),
            _count(self.decisions_count, "decision"),
            _count(len(self.new_risky), "new risky token"),
            _count(len(self.failing_workspaces), "workspace") + " failing to sync",
        ]
        if self.overdue:
            parts.append(_count(len(self.overdue), "overdue token"))
        if self.extensions:
            parts.append(_count(len(self.extensions), "extension"))
        return ", ".join(parts) + "."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# ---------------------------------------------------------------------------------------------
# building


def build(
    *,
    session: Session,
    policy: Policy,
    now: datetime,
    tz: str = "UTC",
    since: datetime | None = None,
) -> Digest:
    """The digest at `now`; `since` defaults to the last posted digest (or a week ago)."""
    since = since or last_posted_at(session=session) or now - FIRST_DIGEST_LOOKBACK
    zone = _zone(tz)
    views = report.token_views(session=session, policy=policy, now=now)
    by_pk = {view.pk: view for view in views}
    return Digest(
        now=now,
        since=since,
        tz=tz,
        days=_days(views, now, zone),
        unanswered=_unanswered(session, by_pk, now),
        **_decisions(session, since),
        new_risky=_new_risky(session, by_pk, since),
        failing_workspaces=_failing_workspaces(session),
        overdue=_overdue(views, now) if not policy.enforce else (),
        extensions=_extensions(session, since),
        enforce=policy.enforce,
        chart=_chart(views, now, zone),
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _upcoming(views: Iterable[TokenView], now: datetime, days: int) -> list[DueToken]:
    horizon = now + timedelta(days=days)
    found = [
        DueToken(TokenRef.of(view), deadline.kind, deadline.due_at)
        for view in views
        for deadline in view.evaluation.deadlines
        if now < deadline.due_at <= horizon
    ]
    found.sort(key=lambda due: (due.due_at, due.token.workspace, due.token.token_id))
    return found


def _days(views: list[TokenView], now: datetime, zone: ZoneInfo) -> tuple[DayGroup, ...]:
    by_day: dict[date, dict[DeadlineKind, list[DueToken]]] = defaultdict(lambda: defaultdict(list))
    for due in _upcoming(views, now, HORIZON_DAYS):
        by_day[due.due_at.astimezone(zone).date()][due.kind].append(due)
    return tuple(
        DayGroup(
            day,
            tuple((kind, tuple(kinds[kind])) for kind in KIND_ORDER if kinds.get(kind)),
        )
        for day, kinds in sorted(by_day.items())
    )


def _chart(views: list[TokenView], now: datetime, zone: ZoneInfo):
    counts: dict[date, Counter] = defaultdict(Counter)
    for due in _upcoming(views, now, CHART_DAYS):
        counts[due.due_at.astimezone(zone).date()][due.kind] += 1
    today = now.astimezone(zone).date()
    return tuple(
        (
            day,
            tuple((kind, counts[day][kind]) for kind in KIND_ORDER if counts[day][kind]),
        )
        for day in (today + timedelta(days=offset) for offset in range(CHART_DAYS + 1))
    )


def _unanswered(session: Session, by_pk: dict[int, TokenView], now: datetime) -> tuple[Unanswered, ...]:
    rows = session.execute(
        select(Notification.token_pk, Notification.deadline_kind, Notification.due_date, Notification.sent_at)
        .where(
            Notification.step == Step.ESCALATION,
            Notification.status == NotificationStatus.SENT,
            Notification.due_date >= now.date(),
        )
        .order_by(Notification.due_date, Notification.id)
    ).all()
    found: dict[tuple[int, str, date], Unanswered] = {}
    for token_pk, kind, due_date, sent_at in rows:
        view = by_pk.get(token_pk)
        deadline = view.evaluation.deadline(kind, due_date) if view else None
        key = (token_pk, kind, due_date)
        if deadline is None or deadline.due_at <= now or key in found:
            continue
        if decisions.stops_reminders(
            session=session, token_pk=token_pk, deadline_kind=kind, due_date=due_date, now=now
        ):
            continue
        found[key] = Unanswered(TokenRef.of(view), deadline.kind, deadline.due_at, sent_at)
    return tuple(sorted(found.values(), key=lambda u: (u.due_at, u.token.workspace, u.token.token_id)))


# Decisions worth a line of their own: they changed something, or failed to.
_NOTABLE = {
    (decisions.REVOKE, decisions.APPLIED),
    (decisions.ROTATE, decisions.APPLIED),
    (decisions.EXTEND, decisions.APPLIED),
    (decisions.CONFIRM_SCOPES, decisions.APPLIED),
    (decisions.RESTORE, decisions.APPLIED),
    (decisions.ASSIGN_OWNER, decisions.APPLIED),
}
MAX_DECISION_LINES = 15


def _decisions(session: Session, since: datetime) -> dict:
    rows = session.execute(
        select(
            Decision.action,
            Decision.status,
            Decision.actor_slack_id,
            Decision.created_at,
            Decision.error,
            Decision.parameters,
            Token.workspace,
            Token.token_id,
            Token.comment,
        )
        .outerjoin(Token, Token.id == Decision.token_pk)
        .where(Decision.created_at > since)
        .order_by(Decision.created_at.desc(), Decision.id.desc())
    ).all()
    counts: Counter = Counter()
    refused = 0
    lines: list[DecisionLine] = []
    for action, status, actor, created_at, error, parameters, workspace, token_id, comment in rows:
        if status == decisions.REFUSED:
            refused += 1
            continue
        counts[(action, status)] += 1
        notable = (action, status) in _NOTABLE or status == decisions.FAILED
        if notable and not (parameters or {}).get("dry_run") and len(lines) < MAX_DECISION_LINES:
            token = TokenRef(workspace, token_id, comment or "", None, None) if workspace else None
            lines.append(DecisionLine(action, status, actor, token, created_at, error))
    return {
        "decision_counts": tuple((a, s, n) for (a, s), n in sorted(counts.items())),
        "refused": refused,
        "decision_lines": tuple(lines),
    }


def _extensions(session: Session, since: datetime) -> tuple[Extension, ...]:
    rows = session.execute(
        select(
            Exemption.deadline_kind,
            Exemption.until,
            Exemption.requested_by,
            Exemption.approved_by,
            Exemption.created_at,
            Exemption.reason,
            Token.workspace,
            Token.token_id,
            Token.comment,
        )
        .join(Token, Token.id == Exemption.token_pk)
        .where(Exemption.created_at > since)
        .order_by(Exemption.created_at, Exemption.id)
    ).all()
    return tuple(
        Extension(
            TokenRef(workspace, token_id, comment or "", None, None),
            kind,
            until,
            requested_by,
            approved_by,
            created_at,
            reason or "",
        )
        for kind, until, requested_by, approved_by, created_at, reason, workspace, token_id, comment in rows
    )


def _new_risky(session: Session, by_pk: dict[int, TokenView], since: datetime) -> tuple[RiskyToken, ...]:
    rows = session.execute(
        select(Token.id, Token.first_seen_at).where(Token.first_seen_at > since, Token.gone_at.is_(None))
    ).all()
    found = []
    for token_pk, first_seen_at in rows:
        view = by_pk.get(token_pk)
        if view is None:
            continue
        risky = tuple(code for code in view.evaluation.finding_codes if code in RISKY_FINDINGS)
        if risky:
            found.append(RiskyToken(TokenRef.of(view), risky, first_seen_at))
    found.sort(key=lambda r: (FINDING_SEVERITY[r.findings[0]], r.token.workspace, r.token.token_id))
    return tuple(found)


def _failing_workspaces(session: Session) -> tuple[FailingWorkspace, ...]:
    rows = session.execute(
        select(Workspace.name, Workspace.status, Workspace.last_success_at, Workspace.last_error)
        .where(Workspace.status != WorkspaceStatus.OK)
        .order_by(Workspace.name)
    ).all()
    return tuple(FailingWorkspace(*row) for row in rows)


def _overdue(views: list[TokenView], now: datetime) -> tuple[DueToken, ...]:
    found = [
        DueToken(TokenRef.of(view), deadline.kind, deadline.due_at)
        for view in views
        for deadline in view.evaluation.deadlines
        if deadline.kind is DeadlineKind.ORG_POLICY and deadline.due_at <= now
    ]
    return tuple(sorted(found, key=lambda due: (due.due_at, due.token.workspace, due.token.token_id)))


# ---------------------------------------------------------------------------------------------
# posting


def last_posted_at(*, session: Session) -> datetime | None:
    return session.execute(select(func.max(DigestPost.posted_at))).scalar()


def record_posted(*, session: Session, digest: Digest, channel: str, message_ts: str | None) -> DigestPost:
    row = DigestPost(posted_at=digest.now, channel=channel, message_ts=message_ts, summary=digest.summary())
    session.add(row)
    session.flush()
    return row


def run(
    *,
    engine: Engine,
    policy: Policy,
    poster: DigestPoster,
    channel: str,
    now: datetime,
    tz: str = "UTC",
    chart: bool = False,
) -> Digest:
    """Build, post and record one digest. A failed post raises `DeliveryError` and records nothing,
    so the next digest still covers everything since the last one that was posted."""
    with session_scope(engine) as session:
        digest = build(session=session, policy=policy, now=now, tz=tz)
    delivery = poster.post(channel, digest, chart=chart)
    with session_scope(engine) as session:
        record_posted(session=session, digest=digest, channel=channel, message_ts=delivery.ts)
    return digest
