"""Shadow enforcement, stored and read back: every token's calls per service and action (`api_call`),
and how fresh each workspace's audit read is (`audit_read`), written by the usage refresh
(bot/services/usage.py) from the statement it already runs; then, for a token in observation (or
one Databricks marks AUTOSCOPE_STATE_API_NOT_COVERED), the calls its kept scopes would deny
(`bot.domain.shadow.replay`).

Attribution is the usage refresh's: a call in a session whose `tokenLogin` names exactly one token
is that token's (exact); other calls of its owner's identity are the owner's (approximate, shown as
such). Each good read replaces the workspace's rows, so what is shown is exactly what the last read
found over `policy.usage_lookback_days`; a failed read keeps the last good rows and says it failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete, insert, select
from sqlmodel import Session

from bot.databricks.records import AuditUsage
from bot.db import get_or_add, session_scope
from bot.domain import shadow as rules
from bot.domain.deadlines import DeadlineKind
from bot.domain.policy import Evaluation, Policy, evaluate
from bot.domain.shadow import AuditFreshness, ObservedCall, Shadow
from bot.domain.tokens import AUTOSCOPE_API_NOT_COVERED, TokenFacts, is_observing
from bot.models import ApiCall, AuditRead

if TYPE_CHECKING:
    from bot.services.report import TokenView

ERROR_CHARS = 2000
NAME_CHARS = 200  # api_call.service_name and action_name
TOKEN_ID_CHARS = 100


def applies(facts: TokenFacts) -> bool:
    """Whether narrowing (or a hand-picked set of scopes) is still ahead for this token."""
    return is_observing(facts) or facts.autoscope_state == AUTOSCOPE_API_NOT_COVERED


# ---------------------------------------------------------------------------------------------
# written by the usage refresh


def store_calls(
    *,
    session: Session,
    workspace: str,
    audit: AuditUsage,
    owners: Mapping[str, str | None],
    identities: Mapping[str, str],
    now: datetime,
) -> int:
    """Replace the workspace's `api_call` rows with what this read found, and record the read.
    `owners` maps token id -> owner id, `identities` audit identity -> principal id (as the usage
    refresh attributes them). Returns the rows written."""
    found: dict[tuple[str, str, str, str], dict] = {}
    newest: datetime | None = None
    for call in audit.calls:
        if call.last_seen is not None and (newest is None or call.last_seen > newest):
            newest = call.last_seen
        # Clipped to the columns (PostgreSQL refuses longer text): audit text is Databricks', not ours.
        service, action = call.service_name[:NAME_CHARS], (call.action_name or "")[:NAME_CHARS]
        if rules.judge(service, action) is None:
            continue  # the login every use makes: it needs no scope
        token_id = (call.token_id or "")[:TOKEN_ID_CHARS]
        identity = (call.identity or "").strip().lower()
        principal_id = (owners.get(token_id) if token_id else None) or identities.get(identity)
        if principal_id is None:
            continue  # an identity that owns no known token here
        key = (principal_id, token_id, service, action)
        row = found.get(key)
        if row is None:
            found[key] = {
                "workspace": workspace,
                "principal_id": principal_id,
                "token_id": token_id,
                "service_name": service,
                "action_name": action,
                "approximate": not token_id,
                "calls": call.calls,
                "first_seen": call.first_seen,
                "last_seen": call.last_seen,
            }
        else:
            row["calls"] += call.calls
            row["first_seen"] = _earliest(row["first_seen"], call.first_seen)
            row["last_seen"] = _latest(row["last_seen"], call.last_seen)
    session.execute(delete(ApiCall).where(ApiCall.workspace == workspace))
    if found:
        session.execute(insert(ApiCall), list(found.values()))
    read = get_or_add(session, AuditRead, workspace)
    read.since, read.read_at, read.newest_event_at = audit.since, now, newest
    session.flush()
    return len(found)


def record_failure(*, engine: Engine, workspace: str, error: str, now: datetime) -> None:
    """A failed read: the last good rows stay, and the workspace's evidence is marked as failed."""
    with session_scope(engine) as session:
        read = get_or_add(session, AuditRead, workspace)
        read.failed_at, read.error = now, error[:ERROR_CHARS]


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


# ---------------------------------------------------------------------------------------------
# read back


@dataclass(frozen=True, slots=True)
class Subject:
    facts: TokenFacts
    owner_id: str | None
    window_start: datetime | None  # of the observation window ahead of enforcement; None: no window


def window_start(evaluation: Evaluation, policy: Policy) -> datetime | None:
    """Where the observation window that ends at the auto-scoping deadline began."""
    for deadline in evaluation.deadlines:
        if deadline.kind is DeadlineKind.AUTOSCOPE_ENFORCEMENT:
            return deadline.due_at - timedelta(days=policy.autoscope_observation_days)
    return None


def shadows(
    *, session: Session, policy: Policy, now: datetime, subjects: Sequence[Subject]
) -> dict[tuple[str, str], Shadow]:
    """(workspace, token id) -> what narrowing would deny, for the subjects it `applies` to: two
    queries whatever their number."""
    wanted = [s for s in subjects if applies(s.facts)]
    if not wanted:
        return {}
    since = now - timedelta(days=policy.usage_lookback_days)
    workspaces = sorted({s.facts.workspace for s in wanted})
    freshness = _freshness(session, workspaces, now)
    calls = _calls(session, workspaces, since, wanted)
    found = {}
    for subject in wanted:
        facts = subject.facts
        audit = freshness.get(facts.workspace) or rules.AuditFreshness(rules.AuditState.NOT_READ)
        observed = [
            *calls.get((facts.workspace, facts.token_id, ""), ()),
            *calls.get((facts.workspace, "", subject.owner_id or ""), ()),
        ]
        kept = rules.kept_scopes(observed, facts.inferred_scopes, subject.window_start)
        denied = rules.replay(observed, kept, since) if audit.has_evidence else ()
        found[(facts.workspace, facts.token_id)] = Shadow(
            kept=kept, calls=denied, audit=audit, lookback_days=policy.usage_lookback_days
        )
    return found


def annotate(
    *,
    session: Session,
    views: Iterable[TokenView],
    policy: Policy,
    now: datetime,
    judge: Callable[..., Evaluation] = evaluate,
) -> None:
    """Give each view in observation its shadow, and its findings the exact evidence (`rare_api`,
    `api_not_covered`) in place of the coarse per-scope rule; `judge` evaluates again (the
    report's findings-only judge for a ranking of the whole estate)."""
    views = [v for v in views if applies(v.evaluation.token)]
    if not views:
        return
    subjects = [Subject(v.evaluation.token, v.owner_id, window_start(v.evaluation, policy)) for v in views]
    found = shadows(session=session, policy=policy, now=now, subjects=subjects)
    for view in views:
        shadow = found.get((view.workspace, view.token_id))
        if shadow is None:
            continue
        view.shadow = shadow
        if shadow.calls:
            view.evaluation = judge(view.evaluation.token, policy, now, denied=shadow.calls)


def _freshness(session: Session, workspaces: list[str], now: datetime) -> dict[str, AuditFreshness]:
    rows = session.execute(select(AuditRead).where(AuditRead.workspace.in_(workspaces))).scalars()
    return {
        row.workspace: rules.freshness(
            read_at=row.read_at,
            newest_event_at=row.newest_event_at,
            failed_at=row.failed_at,
            error=row.error,
            now=now,
        )
        for row in rows
    }


def _calls(
    session: Session, workspaces: list[str], since: datetime, subjects: list[Subject]
) -> dict[tuple[str, str, str], list[ObservedCall]]:
    """(workspace, token id, "") -> the token's calls; (workspace, "", owner id) -> its owner's
    approximate ones. Few subjects are looked up by id; many read their workspaces' rows."""
    query = select(
        ApiCall.workspace,
        ApiCall.principal_id,
        ApiCall.token_id,
        ApiCall.service_name,
        ApiCall.action_name,
        ApiCall.calls,
        ApiCall.first_seen,
        ApiCall.last_seen,
    ).where(ApiCall.workspace.in_(workspaces), ApiCall.last_seen >= since)
    if len(subjects) <= 200:
        tokens = {s.facts.token_id for s in subjects}
        owners = {s.owner_id for s in subjects if s.owner_id}
        query = query.where(
            ApiCall.token_id.in_(tokens) | ((ApiCall.token_id == "") & ApiCall.principal_id.in_(owners))
        )
    found: dict[tuple[str, str, str], list[ObservedCall]] = {}
    for workspace, principal_id, token_id, service, action, calls, first_seen, last_seen in session.execute(
        query
    ):
        key = (workspace, token_id, "") if token_id else (workspace, "", principal_id)
        found.setdefault(key, []).append(
            ObservedCall(service, action, calls, first_seen, last_seen, approximate=not token_id)
        )
    return found


# ---------------------------------------------------------------------------------------------
# the report


def as_json(shadow: Shadow | None) -> dict | None:
    """The report's `shadow` object of a token: null when it is not in observation."""
    if shadow is None:
        return None
    audit = shadow.audit
    return {
        "kept_scopes": list(shadow.kept),
        "lookback_days": shadow.lookback_days,
        "audit": {
            "state": audit.state.value,
            "read_at": _iso(audit.read_at),
            "newest_event_at": _iso(audit.newest_event_at),
            "failed_at": _iso(audit.failed_at),
        },
        "denied": [
            {
                "call": call.name,
                "service": call.service,
                "action": call.action,
                "calls": call.calls,
                "first_seen": _iso(call.first_seen),
                "last_seen": _iso(call.last_seen),
                "verdict": call.verdict.value,
                "scope": call.scope,
                "approximate": call.approximate,
            }
            for call in shadow.calls
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
