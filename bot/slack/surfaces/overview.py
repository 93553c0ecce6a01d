"""What `/tokens` and the App Home read: a person's tokens as reminder items with what was
decided about them, decision histories, and the admins' overview. Reads only; the caller owns
the session (STYLE.md 7). Buttons carry `references.for_token(pk, kind, due date)`, which the
existing action handlers resolve like a reminder's."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlmodel import Session

from bot.domain.deadlines import Deadline
from bot.domain.policy import Policy
from bot.models import Decision, Principal, Token, Workspace
from bot.services import decisions, report, windows
from bot.services.ports import ReminderItem
from bot.services.report import TokenView
from bot.slack import references
from bot.slack.blocks.answers import person
from bot.slack.blocks.history import HistoryEntry
from bot.slack.blocks.home import HORIZON_DAYS, SHOWN_WAITING, AdminOverview, HomeData, WaitingToken
from bot.slack.blocks.reminders import Annotation
from bot.slack.surfaces.refresh import annotation

logger = logging.getLogger(__name__)

STEP = "command"  # the ReminderItem step of a token shown by /tokens mine or the App Home
RECENT_DECISIONS = 10


def _owner_clause(user_id: str):
    """The tokens whose principal is this Slack user, or was given to them by an admin: the same
    people the decisions service counts as the owner."""
    return or_(Principal.slack_user_id == user_id, Principal.owner_slack_id == user_id)


_OWNER = and_(Principal.workspace == Token.workspace, Principal.principal_id == Token.owner_id)


def owned_pks(session: Session, user_id: str, *, include_gone: bool = False) -> list[int]:
    query = select(Token.id).join(Principal, _OWNER)
    query = query.where(_owner_clause(user_id))
    if not include_gone:
        query = query.where(Token.gone_at.is_(None))
    return list(session.execute(query).scalars())


@dataclass
class Owned:
    items: list[ReminderItem] = field(default_factory=list)
    decided: dict[str, Annotation] = field(default_factory=dict)
    undated: list[TokenView] = field(default_factory=list)


def owned(session: Session, policy: Policy, now: datetime, user_id: str) -> Owned:
    """The user's live tokens, each with the first deadline nobody has settled yet (or, when all
    are settled, the nearest with what was decided), nearest first."""
    pks = owned_pks(session, user_id)
    views = report.token_views(session=session, policy=policy, now=now, token_pks=pks) if pks else []
    return as_items(session, views)


def as_items(session: Session, views: Sequence[TokenView]) -> Owned:
    found = Owned()
    latest = _latest_decisions(session, [v.pk for v in views])
    for view in report.by_nearest_deadline(views):
        deadlines = view.evaluation.deadlines
        if not deadlines:
            found.undated.append(view)
            continue
        chosen, note = deadlines[0], None
        for deadline in deadlines:
            decision = _about(latest.get(view.pk, ()), deadline)
            shown = annotation(decision) if decision is not None else None
            if shown is None or shown.keep_buttons:
                chosen, note = deadline, shown
                break
            if deadline is deadlines[0]:
                note = shown
        reference = references.for_token(view.pk, str(chosen.kind), chosen.due_at.date())
        found.items.append(ReminderItem(reference=reference, view=view, deadline=chosen, step=STEP))
        if note is not None:
            found.decided[reference] = note
    found.items.sort(key=lambda item: (item.deadline.due_at, item.view.workspace, item.view.token_id))
    return found


def _latest_decisions(session: Session, token_pks: Sequence[int]) -> dict[int, list[Decision]]:
    found: dict[int, list[Decision]] = {}
    if not token_pks:
        return found
    rows = session.execute(
        select(Decision)
        .where(Decision.token_pk.in_(list(token_pks)), Decision.status != decisions.REFUSED)
        .order_by(Decision.id.desc())
    ).scalars()
    for decision in rows:
        found.setdefault(decision.token_pk, []).append(decision)
    return found


def _about(candidates: Sequence[Decision], deadline: Deadline) -> Decision | None:
    """The newest decision that settles or concerns this deadline: one about the whole token
    (revoke, rotate, an open "not mine"), or one about this deadline's kind and day."""
    for decision in candidates:
        parameters = decision.parameters or {}
        if decision.action in (decisions.REVOKE, decisions.ROTATE):
            return decision
        if decision.action == decisions.NOT_MINE and decision.status == decisions.REQUESTED:
            return decision
        if (
            parameters.get("deadline_kind") == str(deadline.kind)
            and str(parameters.get("due_date", ""))[:10] == deadline.due_at.date().isoformat()
        ):
            return decision
    return None


def history(
    session: Session,
    *,
    token_pk: int | None = None,
    user_id: str | None = None,
    limit: int | None = None,
    include_refused: bool = True,
) -> list[HistoryEntry]:
    """Decisions, newest first: about one token, or made by or about the tokens of one user."""
    query = select(Decision, Token.workspace, Token.token_id).outerjoin(Token, Token.id == Decision.token_pk)
    if token_pk is not None:
        query = query.where(Decision.token_pk == token_pk)
    if user_id is not None:
        mine = owned_pks(session, user_id, include_gone=True)
        query = query.where(or_(Decision.actor_slack_id == user_id, Decision.token_pk.in_(mine)))
    if not include_refused:
        query = query.where(Decision.status != decisions.REFUSED)
    query = query.order_by(Decision.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [
        HistoryEntry(decision, workspace, token_id)
        for decision, workspace, token_id in session.execute(query)
    ]


def admin_overview(session: Session, policy: Policy, now: datetime) -> AdminOverview:
    """The admins' part of the Home. Counted over the whole estate, but only the tokens that may be
    due within the horizon are evaluated (`windows.upcoming`), and only the first few waiting
    tokens are kept."""
    due = windows.upcoming(session=session, policy=policy, now=now, days=HORIZON_DAYS, keep=0)
    workspaces = list(session.execute(select(Workspace).order_by(Workspace.name)).scalars())
    waiting, count = waiting_for_owner(session, policy, now)
    return AdminOverview(due.counts, due.overdue, workspaces, waiting, waiting_count=count)


def waiting_for_owner(
    session: Session, policy: Policy, now: datetime, shown: int = SHOWN_WAITING
) -> tuple[list[WaitingToken], int]:
    """Tokens handed back with an open "Not mine", then service principals' tokens nobody owns,
    nearest deadline first: all of the first kind and `shown` of the second, and how many in all."""
    requests = session.execute(
        select(Decision.token_pk, Decision.actor_slack_id)
        .where(Decision.action == decisions.NOT_MINE, Decision.status == decisions.REQUESTED)
        .order_by(Decision.id)
    ).all()
    asked = {pk for pk, _ in requests if pk is not None}
    live = {v.pk: v for v in report.token_views(session=session, policy=policy, now=now, token_pks=asked)}
    waiting: dict[int, WaitingToken] = {}
    for token_pk, actor in requests:
        view = live.get(token_pk)
        if view is not None and token_pk not in waiting:
            why = f"{person(actor)} says it is not theirs."
            waiting[token_pk] = WaitingToken(view, references.for_token(token_pk), why)
    unowned = 0

    def nobodys() -> Iterator[TokenView]:
        nonlocal unowned
        # Their ids first, from the few service principals (an inner join SQL can start there).
        pks = session.execute(
            select(Token.id)
            .join(Principal, _OWNER)
            .where(Token.gone_at.is_(None), _unowned_service_principal())
        ).scalars()
        for view in report.iter_views(session=session, policy=policy, now=now, token_pks=list(pks)):
            if view.pk not in waiting:
                unowned += 1
                yield view

    for view in windows.smallest(nobodys(), shown, key=report.nearest_key):
        waiting[view.pk] = WaitingToken(
            view, references.for_token(view.pk), "A service principal's token that nobody in Slack owns."
        )
    return list(waiting.values()), len(waiting) - min(unowned, shown) + unowned


def _unowned_service_principal():
    """A service principal's token with nobody in Slack for it (`TokenView.owner_slack_id` empty)."""
    return and_(
        Principal.kind == "service_principal",
        or_(Principal.owner_slack_id.is_(None), Principal.owner_slack_id == ""),
        or_(Principal.slack_user_id.is_(None), Principal.slack_user_id == ""),
    )


def home_data(
    session: Session, policy: Policy, now: datetime, user_id: str, tz: str, is_admin: bool
) -> HomeData:
    found = owned(session, policy, now, user_id)
    overview = admin_overview(session, policy, now) if is_admin else None
    recent = history(session, user_id=user_id, limit=RECENT_DECISIONS, include_refused=False)
    return HomeData(tz, now, found.items, found.decided, found.undated, recent, overview)
