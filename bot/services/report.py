"""Live tokens with their deadlines and findings, read from the database: the one query the
report, the slash command, the App Home and the digest all build on."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session

from bot.domain.ladder import current_step
from bot.domain.policy import DeadlineKind, Evaluation, Exemption, Policy, TokenFacts, evaluate
from bot.models import Exemption as ExemptionRow
from bot.models import Principal, Token, Workspace

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)  # not frozen: a frozen dataclass pays a setattr per field, 100,000 times
class TokenView:
    """A token as people see it: where it lives, whose it is, and what the rules say."""

    pk: int
    workspace: str
    token_id: str
    owner_id: str | None
    owner: str | None  # email of a user, application id of a service principal
    owner_name: str | None
    owner_kind: str | None
    owner_slack_id: str | None  # the Slack user found for the owner, or the admin-assigned one
    comment: str
    created_at: datetime | None
    expires_at: datetime | None
    last_used_on: datetime | None
    scopes: tuple[str, ...]
    inferred_scopes: tuple[str, ...]
    autoscope_state: str | None
    evaluation: Evaluation

    def nearest_due(self) -> datetime | None:
        deadline = self.evaluation.next_deadline
        return deadline.due_at if deadline else None


_COLUMNS = (
    Token.id,
    Token.workspace,
    Token.token_id,
    Token.owner_id,
    Token.comment,
    Token.created_at,
    Token.first_seen_at,
    Token.expires_at,
    Token.last_used_on,
    Token.scopes,
    Token.inferred_scopes,
    Token.autoscope_state,
    Token.observation_started_at,
    Token.enforcement_at,
    Principal.kind,
    Principal.email,
    Principal.application_id,
    Principal.display_name,
    Principal.active,
    Principal.slack_user_id,
    Principal.owner_slack_id,
    Workspace.max_token_lifetime_days,
)


def token_views(
    *,
    session: Session,
    policy: Policy,
    now: datetime,
    workspace: str | None = None,
    owner: str | None = None,
    token_pks: Iterable[int] | None = None,
) -> list[TokenView]:
    """Every live token (optionally one workspace's, one owner's, or the given ones), evaluated."""
    query = (
        select(*_COLUMNS)
        .join(Workspace, Workspace.name == Token.workspace)
        .outerjoin(
            Principal, and_(Principal.workspace == Token.workspace, Principal.principal_id == Token.owner_id)
        )
        .where(Token.gone_at.is_(None))
    )
    if workspace:
        query = query.where(Token.workspace == workspace)
    if token_pks is not None:
        query = query.where(Token.id.in_(list(token_pks)))
    exemptions = _active_exemptions(session, now)
    with without_gc():
        views = [_view(row, exemptions.get(row.id, ()), policy, now) for row in session.execute(query)]
    if owner:
        wanted = owner.lower()
        views = [
            v
            for v in views
            if wanted
            in {(v.owner or "").lower(), (v.owner_id or "").lower(), (v.owner_slack_id or "").lower()}
        ]
    return views


@contextmanager
def without_gc() -> Iterator[None]:
    """Building 100,000 small acyclic objects wakes the cycle collector hundreds of times, each
    pass scanning everything built so far: it more than doubles the time and frees nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _active_exemptions(session: Session, now: datetime) -> dict[int, tuple[Exemption, ...]]:
    found: dict[int, list[Exemption]] = {}
    rows = session.execute(
        select(ExemptionRow.token_pk, ExemptionRow.deadline_kind, ExemptionRow.until).where(
            ExemptionRow.until > now, ExemptionRow.approved_by.is_not(None)
        )
    )
    for token_pk, kind, until in rows:
        found.setdefault(token_pk, []).append(Exemption(DeadlineKind(kind), until))
    return {pk: tuple(items) for pk, items in found.items()}


def _view(row: Any, exemptions: tuple[Exemption, ...], policy: Policy, now: datetime) -> TokenView:
    resolved = row.kind is not None
    facts = TokenFacts(
        workspace=row.workspace,
        token_id=row.token_id,
        owner_kind=row.kind,
        owner_active=row.active,
        owner_resolved=resolved,
        comment=row.comment or "",
        created_at=row.created_at or row.first_seen_at or now,
        expires_at=row.expires_at,
        last_used_on=row.last_used_on,
        scopes=tuple(row.scopes or ()),
        inferred_scopes=tuple(row.inferred_scopes or ()),
        autoscope_state=row.autoscope_state,
        observation_started_at=row.observation_started_at,
        enforcement_at=row.enforcement_at,
        workspace_max_lifetime_days=row.max_token_lifetime_days,
        exemptions=exemptions,
    )
    return TokenView(
        pk=row.id,
        workspace=row.workspace,
        token_id=row.token_id,
        owner_id=row.owner_id,
        owner=row.email if row.kind == "user" else row.application_id,
        owner_name=row.display_name,
        owner_kind=row.kind,
        owner_slack_id=row.owner_slack_id or row.slack_user_id,
        comment=row.comment or "",
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_on=row.last_used_on,
        scopes=facts.scopes,
        inferred_scopes=facts.inferred_scopes,
        autoscope_state=row.autoscope_state,
        evaluation=evaluate(facts, policy, now),
    )


def due_within(views: Sequence[TokenView], now: datetime, days: int) -> list[TokenView]:
    horizon = now + timedelta(days=days)
    return [v for v in views if (due := v.nearest_due()) is not None and due <= horizon]


def by_nearest_deadline(views: Iterable[TokenView]) -> list[TokenView]:
    """Nearest (or most overdue) first; tokens with no deadline last."""

    def key(view: TokenView) -> tuple[bool, datetime, str, str]:
        due = view.nearest_due()
        return (due is None, due or _EPOCH, view.workspace, view.token_id)

    return sorted(views, key=key)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, the contract's time format."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def contract_row(view: TokenView, policy: Policy, now: datetime) -> dict[str, Any]:
    """One object of `tokenbot report --format json` (DESIGN.md section 5)."""
    return {
        "workspace": view.workspace,
        "token_id": view.token_id,
        "owner": view.owner,
        "owner_slack_id": view.owner_slack_id,
        "comment": view.comment,
        "created_at": iso(view.created_at),
        "expires_at": iso(view.expires_at),
        "last_used_on": iso(view.last_used_on),
        "scopes": list(view.scopes),
        "inferred_scopes": list(view.inferred_scopes),
        "autoscope_state": view.autoscope_state,
        "deadlines": [
            {
                "kind": str(d.kind),
                "due_at": iso(d.due_at),
                "step": current_step(d.due_at, now, policy.reminder_days),
            }
            for d in view.evaluation.deadlines
        ],
        "findings": [str(code) for code in view.evaluation.finding_codes],
    }
