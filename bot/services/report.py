"""Live tokens with their deadlines and findings, read from the database: the one query the
report, the slash command, the App Home and the digest all build on."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _json_str  # what json.dumps writes a string as
from types import MappingProxyType
from typing import Any

from sqlalchemy import and_, func, select, type_coerce
from sqlalchemy.types import NullType
from sqlmodel import Session

from bot.domain.clients import TokenConsumers
from bot.domain.deadlines import DeadlineKind
from bot.domain.findings import FindingResult, find_risks, junk_regex
from bot.domain.ladder import current_step
from bot.domain.policy import Evaluation, Policy, evaluate
from bot.domain.shadow import DeniedCall, Shadow
from bot.domain.tokens import Exemption, TokenFacts, is_observing
from bot.models import Exemption as ExemptionRow
from bot.models import Principal, Token, UTCDateTime, Workspace
from bot.services import consumers, shadow, usage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_RARE_SCOPES: Mapping[str, date] = MappingProxyType({})


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
    shadow: Shadow | None = None  # in observation: what narrowing would deny (bot/services/shadow.py)
    consumers: TokenConsumers | None = None  # who uses it: loaded for a few tokens (token_pks)

    def nearest_due(self) -> datetime | None:
        deadline = self.evaluation.next_deadline
        return deadline.due_at if deadline else None


def _raw(column: Any) -> Any:
    """The column exactly as the driver returns it; `_Decoder` turns it into what the type would."""
    return type_coerce(column, NullType())


# The bulk read takes times and scope lists raw: the column types would decode each value
# separately (SQLite returns both as text), while most tokens share a few scope lists and days.
_COLUMNS = (
    Token.id,
    Token.workspace,
    Token.token_id,
    Token.owner_id,
    Token.comment,
    _raw(Token.created_at),
    _raw(Token.first_seen_at),
    _raw(Token.expires_at),
    _raw(Token.last_used_on),
    _raw(Token.scopes),
    _raw(Token.inferred_scopes),
    Token.autoscope_state,
    _raw(Token.observation_started_at),
    _raw(Token.enforcement_at),
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
    include_gone: bool = False,
) -> list[TokenView]:
    """Every live token (optionally one workspace's, one owner's, or the given ones), evaluated.
    `include_gone` adds revoked and expired ones (to show a decision about a token now gone).
    For a whole estate, `iter_views` reads the same views without holding them all."""
    with without_gc():
        views = list(
            iter_views(
                session=session,
                policy=policy,
                now=now,
                workspace=workspace,
                token_pks=token_pks,
                include_gone=include_gone,
            )
        )
    if token_pks is not None:  # a message's, a click's or a command's few tokens: who uses them
        consumers.attach(session=session, views=views, now=now)
    if owner:
        views = [view for view in views if owned_by(view, owner)]
    return views


def deadlines_now(*, session: Session, policy: Policy, now: datetime, token_pk: int) -> Evaluation | None:
    """One live token's deadlines as tokenbot computes them now (None when it is unknown or gone),
    for checking the deadline a button names: what `token_views` evaluates, without the usage,
    shadow calls and consumers it reads to explain findings (deadlines never depend on them)."""
    query = select(*_COLUMNS).select_from(_JOINED).where(Token.id == token_pk, Token.gone_at.is_(None))
    row = session.connection().execute(query).first()
    if row is None:
        return None
    exemptions = _active_exemptions(session, now, token_pk)
    return _view(row, exemptions, _Decoder(), policy, now, evaluate).evaluation


def owned_by(view: TokenView, owner: str) -> bool:
    """The owner named by email, application id, Databricks id or Slack id, case aside."""
    wanted = owner.lower()
    return wanted in {
        (view.owner or "").lower(),
        (view.owner_id or "").lower(),
        (view.owner_slack_id or "").lower(),
    }


def iter_views(
    *,
    session: Session,
    policy: Policy,
    now: datetime,
    workspace: str | None = None,
    token_pks: Iterable[int] | None = None,
    include_gone: bool = False,
    where: Sequence[Any] = (),
    order_by: Sequence[Any] = (),
    limit: int | None = None,
) -> Iterator[TokenView]:
    """The views of `token_views`, narrowed by `where` (clauses on Token, Principal, Workspace)
    and ordered in SQL, read in batches and evaluated one by one as the caller takes them: a
    caller that keeps only what it shows holds a few hundred views, not the estate."""
    query = select(*_COLUMNS).select_from(_JOINED)
    if not include_gone:
        query = query.where(Token.gone_at.is_(None))
    if workspace:
        query = query.where(Token.workspace == workspace)
    if token_pks is not None:
        token_pks = list(token_pks)
        query = query.where(Token.id.in_(token_pks))
        # The usage of one workspace is all a click's few tokens need (the index is per workspace).
        workspace = workspace or _only_workspace(session, token_pks)
    query = query.where(*where).order_by(*order_by).limit(limit)
    return _read(session, query, policy, now, workspace, evaluate)


def iter_findings(
    *, session: Session, policy: Policy, now: datetime
) -> Iterator[tuple[int, str, str, tuple[FindingResult, ...]]]:
    """(pk, workspace, token id, findings) of every live token: what `evaluate` finds, without
    working out the deadlines (most of its cost), for ranking the whole estate by risk."""
    query = select(*_COLUMNS).select_from(_JOINED).where(Token.gone_at.is_(None))
    for view in _read(session, query, policy, now, None, _findings_only):
        yield view.pk, view.workspace, view.token_id, view.evaluation.findings


def _findings_only(
    token: TokenFacts,
    policy: Policy,
    now: datetime,
    rare_scopes: Mapping[str, date] = _NO_RARE_SCOPES,
    denied: Sequence[DeniedCall] = (),
) -> Evaluation:
    junk = junk_regex(policy.junk_comment_patterns)
    return Evaluation(token, (), find_risks(token, junk, is_observing(token), rare_scopes, denied))


def _read(
    session: Session,
    query: Any,
    policy: Policy,
    now: datetime,
    workspace: str | None,
    judge: Callable[..., Evaluation],
) -> Iterator[TokenView]:
    exemptions = _active_exemptions(session, now)  # an ORM query: it flushes the session first
    used = usage.load_index(session=session, policy=policy, now=now, workspace=workspace)
    decoder = _Decoder()
    # Through the session's connection: plain rows, fetched in batches as they are used (a
    # server-side cursor on PostgreSQL, SQLite's own stepping).
    rows = session.connection().execute(query.execution_options(stream_results=True, yield_per=BATCH))
    for batch in rows.partitions(BATCH):
        views = [_view(row, exemptions, decoder, policy, now, judge) for row in batch]
        # In observation: what narrowing would deny, the exact evidence that replaces rare_api.
        shadow.annotate(session=session, views=views, policy=policy, now=now, judge=judge)
        for view in views:
            if used and view.shadow is None:  # the audit log shows usage: rare_api for a few tokens
                rare = used.rare_for(view.evaluation.token, view.owner_id)
                if rare:
                    view.evaluation = judge(view.evaluation.token, policy, now, rare)
            yield view


BATCH = 2000  # rows fetched at a time by iter_views

_JOINED = (
    Token.__table__.join(Workspace.__table__, Workspace.name == Token.workspace).outerjoin(
        Principal.__table__,
        and_(Principal.workspace == Token.workspace, Principal.principal_id == Token.owner_id),
    )
)


def count_tokens(
    *, session: Session, where: Sequence[Any] = (), workspace: str | None = None, include_gone: bool = False
) -> int:
    """How many tokens `iter_views` with the same arguments would read: one SQL count. `where`
    names Token columns only; the joins of `iter_views` change no count (every token's workspace
    exists, a foreign key; the owner is an outer join)."""
    query = select(func.count()).select_from(Token)
    if not include_gone:
        query = query.where(Token.gone_at.is_(None))
    if workspace:
        query = query.where(Token.workspace == workspace)
    return session.execute(query.where(*where)).scalar_one()


def _only_workspace(session: Session, token_pks: list[int]) -> str | None:
    """The one workspace these tokens are in, or None when they are in several."""
    if not token_pks or len(token_pks) > 900:
        return None
    found = session.execute(select(Token.workspace).where(Token.id.in_(token_pks)).distinct()).scalars().all()
    return found[0] if len(found) == 1 else None


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


def _active_exemptions(
    session: Session, now: datetime, token_pk: int | None = None
) -> dict[int, tuple[Exemption, ...]]:
    """Every token's approved exemptions still running at `now` (or one token's)."""
    found: dict[int, list[Exemption]] = {}
    query = select(ExemptionRow.token_pk, ExemptionRow.deadline_kind, ExemptionRow.until).where(
        ExemptionRow.until > now, ExemptionRow.approved_by.is_not(None)
    )
    if token_pk is not None:
        query = query.where(ExemptionRow.token_pk == token_pk)
    rows = session.execute(query)
    for token_pk, kind, until in rows:
        found.setdefault(token_pk, []).append(Exemption(DeadlineKind(kind), until))
    return {pk: tuple(items) for pk, items in found.items()}


_AS_UTC = UTCDateTime().process_result_value  # the column type's own rule: aware UTC out


class _Decoder:
    """What the column types would return for the raw times and scope lists of the bulk read.

    SQLite returns them as text (parsed as the types parse it); PostgreSQL's driver returns them
    already decoded. Texts that repeat (scope lists, last-use days) are decoded once.
    """

    def __init__(self) -> None:
        self._scopes: dict[str, tuple[str, ...]] = {}
        self._days: dict[str, datetime] = {}

    @staticmethod
    def utc(raw: str | datetime | None) -> datetime | None:
        if isinstance(raw, str):
            try:
                # The text is naive UTC: parsing it with the offset is 5x faster than replace(tzinfo=).
                return datetime.fromisoformat(raw + "+00:00")
            except ValueError:  # a text with its own offset, which tokenbot never writes
                return _AS_UTC(datetime.fromisoformat(raw), None)
        return None if raw is None else _AS_UTC(raw, None)

    def day(self, raw: str | datetime | None) -> datetime | None:
        """A time that is usually a midnight, such as `last_used_on`: few distinct values."""
        if not isinstance(raw, str):
            return self.utc(raw)
        moment = self._days.get(raw)
        if moment is None:
            moment = self._days[raw] = self.utc(raw)
        return moment

    def scopes(self, raw: str | list[str] | None) -> tuple[str, ...]:
        if not isinstance(raw, str):
            return tuple(raw or ())
        scopes = self._scopes.get(raw)
        if scopes is None:
            scopes = self._scopes[raw] = tuple(json.loads(raw) or ())
        return scopes


def _view(
    row: Any,
    exemptions: dict[int, tuple[Exemption, ...]],
    decoder: _Decoder,
    policy: Policy,
    now: datetime,
    judge: Callable[..., Evaluation] = evaluate,
) -> TokenView:
    (
        pk,
        workspace,
        token_id,
        owner_id,
        comment,
        created_at,
        first_seen_at,
        expires_at,
        last_used_on,
        scopes,
        inferred_scopes,
        autoscope_state,
        observation_started_at,
        enforcement_at,
        kind,
        email,
        application_id,
        display_name,
        active,
        slack_user_id,
        owner_slack_id,
        max_lifetime_days,
    ) = row
    utc = decoder.utc
    created_at, expires_at, last_used_on = utc(created_at), utc(expires_at), decoder.day(last_used_on)
    scopes, inferred_scopes = decoder.scopes(scopes), decoder.scopes(inferred_scopes)
    comment = comment or ""
    facts = TokenFacts(
        workspace=workspace,
        token_id=token_id,
        owner_kind=kind,
        owner_active=active,
        owner_resolved=kind is not None,
        comment=comment,
        created_at=created_at or utc(first_seen_at) or now,
        expires_at=expires_at,
        last_used_on=last_used_on,
        scopes=scopes,
        inferred_scopes=inferred_scopes,
        autoscope_state=autoscope_state,
        observation_started_at=utc(observation_started_at),
        enforcement_at=utc(enforcement_at),
        workspace_max_lifetime_days=max_lifetime_days,
        exemptions=exemptions.get(pk, ()),
    )
    return TokenView(
        pk=pk,
        workspace=workspace,
        token_id=token_id,
        owner_id=owner_id,
        owner=email if kind == "user" else application_id,
        owner_name=display_name,
        owner_kind=kind,
        owner_slack_id=owner_slack_id or slack_user_id,
        comment=comment,
        created_at=created_at,
        expires_at=expires_at,
        last_used_on=last_used_on,
        scopes=scopes,
        inferred_scopes=inferred_scopes,
        autoscope_state=autoscope_state,
        evaluation=judge(facts, policy, now),
    )


def due_within(views: Sequence[TokenView], now: datetime, days: int) -> list[TokenView]:
    horizon = now + timedelta(days=days)
    return [v for v in views if (due := v.nearest_due()) is not None and due <= horizon]


def nearest_key(view: TokenView) -> tuple[bool, datetime, str, str]:
    """Nearest (or most overdue) first; tokens with no deadline last."""
    deadlines = view.evaluation.deadlines  # what nearest_due() reads, without two calls per token
    return (not deadlines, deadlines[0].due_at if deadlines else _EPOCH, view.workspace, view.token_id)


def by_nearest_deadline(views: Iterable[TokenView]) -> list[TokenView]:
    """Nearest (or most overdue) first; tokens with no deadline last."""
    return sorted(views, key=nearest_key)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, the contract's time format."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def contract_rows(views: Iterable[TokenView], policy: Policy, now: datetime) -> Iterator[dict[str, Any]]:
    """The objects of `tokenbot report --format json` (DESIGN.md section 5), one per view."""
    # Tokens share many times (last-use days, and the deadlines counted from them), and sorted
    # views put equal deadlines side by side: a small cache formats most of them once. Every
    # time here is aware UTC, so equal times have equal texts.
    text = lru_cache(maxsize=4096)(iso)
    reminder_days = policy.reminder_days

    @lru_cache(maxsize=4096)
    def step(due_at: datetime) -> int | None:
        return current_step(due_at, now, reminder_days)

    for view in views:
        yield {
            "workspace": view.workspace,
            "token_id": view.token_id,
            "owner": view.owner,
            "owner_slack_id": view.owner_slack_id,
            "comment": view.comment,
            "created_at": text(view.created_at),
            "expires_at": text(view.expires_at),
            "last_used_on": text(view.last_used_on),
            "scopes": list(view.scopes),
            "inferred_scopes": list(view.inferred_scopes),
            "autoscope_state": view.autoscope_state,
            "deadlines": [
                {"kind": d.kind.value, "due_at": text(d.due_at), "step": step(d.due_at)}
                for d in view.evaluation.deadlines
            ],
            "findings": [finding.code.value for finding in view.evaluation.findings],
        }


def contract_json(views: Iterable[TokenView], policy: Policy, now: datetime) -> Iterator[str]:
    """Each of `contract_rows` as `json.dumps` writes it (one line), but filled into a template:
    for 100,000 tokens, building the dicts and encoding them takes 1.5 s, the template under 1 s.

    Every string goes through json's own encoder, so the text is the same; a key added to
    `contract_rows` must be added here too.
    """
    reminder_days = policy.reminder_days

    @lru_cache(maxsize=4096)  # as in contract_rows: many times repeat
    def when(moment: datetime | None) -> str:
        return "null" if moment is None else f'"{iso(moment)}"'

    @lru_cache(maxsize=4096)
    def step(due_at: datetime) -> str:
        found = current_step(due_at, now, reminder_days)
        return "null" if found is None else str(found)

    @lru_cache(maxsize=1024)  # scope lists and finding codes: a few distinct ones
    def strings(values: tuple[str, ...]) -> str:
        return "[" + ", ".join(map(_json_str, values)) + "]"

    for view in views:
        evaluation = view.evaluation
        deadlines = ", ".join(
            [
                f'{{"kind": {_json_str(d.kind)}, "due_at": {when(d.due_at)}, "step": {step(d.due_at)}}}'
                for d in evaluation.deadlines
            ]
        )
        yield (
            f'{{"workspace": {_json_str(view.workspace)}, "token_id": {_json_str(view.token_id)}, '
            f'"owner": {_json_or_null(view.owner)}, "owner_slack_id": {_json_or_null(view.owner_slack_id)}, '
            f'"comment": {_json_str(view.comment)}, "created_at": {when(view.created_at)}, '
            f'"expires_at": {when(view.expires_at)}, "last_used_on": {when(view.last_used_on)}, '
            f'"scopes": {strings(view.scopes)}, "inferred_scopes": {strings(view.inferred_scopes)}, '
            f'"autoscope_state": {_json_or_null(view.autoscope_state)}, "deadlines": [{deadlines}], '
            f'"findings": {strings(evaluation.finding_codes)}}}'
        )


def _json_or_null(text: str | None) -> str:
    return "null" if text is None else _json_str(text)
