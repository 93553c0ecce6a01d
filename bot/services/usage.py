"""Observed API usage from the audit log (`api_usage`), and the `rare_api` rule built on it.

Auto-scoping watches a token for 30 days and keeps what it saw. A job that calls `jobs` once a
quarter is not seen, and breaks at quarter close. tokenbot reads `system.access.audit` further
back (`policy.usage_lookback_days`, default 180) for every workspace with an
`audit_warehouse_id`, maps each audit service to a scope (`bot/domain/scopes.py`), and keeps per
principal, per token where it can tell, per service: first and last use and the number of calls.

Attribution, and where it is approximate:

- Exact (``approximate = False``, ``token_id`` set): the audit log names a token only on the
  `accounts` `tokenLogin` event (`request_params.tokenId`). When that login's `session_id` comes
  back on other events, and that session id belongs to exactly one token, those events are the
  token's. The warehouse makes that link (a join on the session) and groups the events by
  identity, token, day, service and action, so the result grows with the days and services used,
  not with the number of events.
- Approximate (``approximate = True``, ``token_id = ""``): every other event of an identity
  (`user_identity.email`: a user's email or a service principal's application id) is attributed
  to the principal, which means to each of its tokens. Such an event may have come from the web
  UI, a notebook, another token or OAuth, so for a person with several tokens the `rare_api`
  finding may be a false alarm; it never misses a scope the principal used.
- Events of identities tokenbot does not know as a token owner in that workspace are counted
  in the result (`unmatched_calls`) and not stored. The `tokenLogin` events themselves say
  nothing about scopes and are not stored either.
- Services with no known scope are stored with ``scope = None`` and listed in the refresh's
  result as unmapped, never dropped. An action whose scope differs from its service's (such as
  `accounts` `generateDbToken` -> `authentication`) is stored under `service.action`.

A refresh reads the whole lookback window again and replaces the counts it read (`calls` is the
number of calls within the window; `first_seen` keeps the earliest ever seen); rows not seen
again stay, and age out of the rules by their `last_seen`.

`rare_api`: a scope used within the lookback window but not within the token's observation
window, and not among its inferred scopes. It matters only while auto-scoping observes a token or
once it has narrowed it (states RUNNING, COMPLETED, BACKFILLED, or an announced enforcement).
While observing, the window runs from the announced enforcement date minus the observation days,
else from the observation start (or what the rules derive for it: rollout date, creation), to
now. Once narrowed it is the observation days before the enforcement (the event's date, or
`narrowed_at` where known: the narrowing message and the modals); a lost scope called after it
counts too (that call is the job that broke). The report, which reads no `narrowed_at`, uses the
last observation-days before now for a narrowed token without an announced date.

Known limit: results come back INLINE (JSON_ARRAY), which Databricks caps at 25 MiB a statement,
read chunk by chunk (`next_chunk_index`). With one row per identity, token, day, service and
action that takes a very large estate; the gateway also refuses more than `AUDIT_MAX_GROUPS` rows.
Either way the refresh fails for that workspace with a message saying to shorten
`usage_lookback_days` (nothing is cut short: a partial count would make rare scopes look unused).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.databricks.records import AuditUsage, GatewayError, UsageGateway
from bot.db import session_scope
from bot.domain.policy import Policy
from bot.domain.scopes import scope_for_service
from bot.domain.tokens import AUTOSCOPE_BACKFILLED, AUTOSCOPE_COMPLETED, TokenFacts, is_observing
from bot.models import ApiUsage, Principal, Token
from bot.services import shadow

if TYPE_CHECKING:
    from bot.config import Settings

logger = logging.getLogger(__name__)

NO_RARE_SCOPES: Mapping[str, date] = MappingProxyType({})
NARROWED_STATES = frozenset({AUTOSCOPE_COMPLETED, AUTOSCOPE_BACKFILLED})


# =============================================================================================
# refresh: audit log -> api_usage


@dataclass
class UsageResult:
    """One workspace's refresh."""

    workspace: str
    ok: bool
    skipped: bool = False  # no audit_warehouse_id configured
    error: str | None = None
    since: str | None = None
    audit_groups: int = 0  # aggregated rows the warehouse returned
    rows: int = 0  # api_usage rows written (inserted or updated)
    tied_to_tokens: int = 0  # of them, exact (through a token's login session)
    attributed_to_owners: int = 0  # of them, approximate (to the principal)
    unmatched_calls: int = 0  # calls by identities that own no known token here
    unmapped_services: dict[str, int] = field(default_factory=dict)  # service -> calls, no scope known
    seconds: float = 0.0
    consumers: int = 0  # tokenconsumer rows written (`audit_read.refresh_all`)
    misuse_findings: int = 0  # new misuse findings recorded

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def refresh_usage(
    *,
    engine: Engine,
    settings: Settings,
    gateway_for: Callable[[str], UsageGateway],
    now: datetime,
    workspaces: Iterable[str] | None = None,
    max_wait_seconds: float = 600.0,
) -> list[UsageResult]:
    """Refresh `api_usage` for every configured workspace (or the named ones). Workspaces with no
    `audit_warehouse_id` are skipped; a failure is logged and reported for its workspace only.
    This is the daily job: `refresh_usage(engine=, settings=, gateway_for=, now=clock.now())`."""
    wanted = set(workspaces) if workspaces is not None else None
    policy: Policy = settings.policy
    since = now - timedelta(days=policy.usage_lookback_days)
    results = []
    for workspace in settings.workspaces:
        if wanted is not None and workspace.name not in wanted:
            continue
        if not workspace.audit_warehouse_id:
            results.append(UsageResult(workspace=workspace.name, ok=True, skipped=True))
            continue
        started = time.perf_counter()
        result = _refresh_one(
            engine, workspace.name, workspace.audit_warehouse_id, gateway_for, since, max_wait_seconds, now
        )
        result.seconds = round(time.perf_counter() - started, 3)
        results.append(result)
    return results


def _refresh_one(
    engine: Engine,
    workspace: str,
    warehouse_id: str,
    gateway_for: Callable[[str], UsageGateway],
    since: datetime,
    max_wait_seconds: float,
    now: datetime,
) -> UsageResult:
    try:
        audit = gateway_for(workspace).audit_usage(warehouse_id, since, max_wait_seconds=max_wait_seconds)
    except GatewayError as error:
        logger.error("usage refresh %s: %s", workspace, error.message)
        shadow.record_failure(engine=engine, workspace=workspace, error=error.message, now=now)
        return UsageResult(workspace=workspace, ok=False, error=error.message, since=since.isoformat())
    except Exception as error:  # one workspace's surprise must not stop the others
        logger.exception("usage refresh %s: unexpected failure", workspace)
        message = f"unexpected error: {type(error).__name__}: {error}"
        shadow.record_failure(engine=engine, workspace=workspace, error=message, now=now)
        return UsageResult(workspace=workspace, ok=False, error=message, since=since.isoformat())
    with session_scope(engine) as session:
        result = store_usage(session=session, workspace=workspace, audit=audit, now=now)
    logger.info(
        "usage refresh %s: %d groups -> %d rows (%d exact, %d approximate), %d unmatched calls",
        workspace,
        result.audit_groups,
        result.rows,
        result.tied_to_tokens,
        result.attributed_to_owners,
        result.unmatched_calls,
    )
    return result


@dataclass
class _Aggregate:
    scope: str | None
    approximate: bool
    calls: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def add(self, calls: int, first_seen: datetime | None, last_seen: datetime | None) -> None:
        self.calls += calls
        self.first_seen = _earliest(self.first_seen, first_seen)
        self.last_seen = _latest(self.last_seen, last_seen)


def store_usage(
    *, session: Session, workspace: str, audit: AuditUsage, now: datetime | None = None
) -> UsageResult:
    """Attribute the audit rows (see the module docstring) and upsert them into `api_usage`; with
    `now`, also store the calls per action for shadow enforcement (bot/services/shadow.py)."""
    result = UsageResult(workspace=workspace, ok=True, since=audit.since.isoformat())
    result.audit_groups = len(audit.calls)
    identities = _identities(session, workspace)
    owners = dict(
        session.execute(select(Token.token_id, Token.owner_id).where(Token.workspace == workspace)).all()
    )

    found: dict[tuple[str, str, str], _Aggregate] = {}
    for call in audit.calls:
        service, action = call.service_name, call.action_name
        scope = scope_for_service(service, action)
        if scope is None and scope_for_service(service) is not None:
            continue  # e.g. accounts/tokenLogin: the login every token use makes, no scope in it
        key_service = service
        if action and scope is not None and scope != scope_for_service(service):
            key_service = f"{service}.{action}"
        if scope is None:
            result.unmapped_services[service] = result.unmapped_services.get(service, 0) + call.calls
        token_id = call.token_id or None
        identity = (call.identity or "").strip().lower()
        if token_id is not None:
            principal_id = owners.get(token_id) or identities.get(identity)
        else:
            principal_id = identities.get(identity)
        if principal_id is None:
            result.unmatched_calls += call.calls
            continue
        key = (principal_id, token_id or "", key_service)
        aggregate = found.get(key)
        if aggregate is None:
            aggregate = found[key] = _Aggregate(scope=scope, approximate=token_id is None)
        aggregate.add(call.calls, call.first_seen, call.last_seen)

    existing = {
        (row.principal_id, row.token_id, row.service_name): row
        for row in session.execute(select(ApiUsage).where(ApiUsage.workspace == workspace)).scalars()
    }
    for (principal_id, token_id, service), aggregate in found.items():
        row = existing.get((principal_id, token_id, service))
        if row is None:
            row = ApiUsage(
                workspace=workspace, principal_id=principal_id, token_id=token_id, service_name=service
            )
            session.add(row)
        row.scope = aggregate.scope
        row.approximate = aggregate.approximate
        row.calls = aggregate.calls
        row.first_seen = _earliest(row.first_seen, aggregate.first_seen)
        row.last_seen = aggregate.last_seen
        result.rows += 1
        if token_id:
            result.tied_to_tokens += 1
        else:
            result.attributed_to_owners += 1
    if now is not None:
        shadow.store_calls(
            session=session, workspace=workspace, audit=audit, owners=owners, identities=identities, now=now
        )
    session.flush()
    return result


def _identities(session: Session, workspace: str) -> dict[str, str]:
    """Audit identity (lower-cased email or application id) -> Databricks principal id."""
    found: dict[str, str] = {}
    rows = session.execute(
        select(Principal.principal_id, Principal.email, Principal.application_id).where(
            Principal.workspace == workspace
        )
    )
    for principal_id, email, application_id in rows:
        for identity in (email, application_id):
            if identity:
                found[identity.strip().lower()] = principal_id
    return found


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


# =============================================================================================
# rare_api


def rare_scopes(
    used: Mapping[str, datetime],
    *,
    inferred: Iterable[str],
    window_start: datetime,
    since: datetime,
    window_end: datetime | None = None,
) -> dict[str, date]:
    """Scopes last used within the lookback (`since` on) but outside the observation window
    (before it began, or, once it has ended at `window_end`, after it: a lost scope still called
    is the job that broke), and not inferred: scope -> the day it was last used."""
    inferred = set(inferred)
    return {
        scope: last.date()
        for scope, last in sorted(used.items())
        if since <= last
        and (last < window_start or (window_end is not None and last > window_end))
        and scope not in inferred
    }


def _applies(state: str | None, observing: bool) -> bool:
    return observing or state in NARROWED_STATES


class UsageIndex:
    """Every scope's last use per token and per principal, for `report.token_views`: loaded in
    one query, then asked once per token (a dict miss for tokens with no usage)."""

    __slots__ = ("_tokens", "_principals", "_policy", "_now", "_since")

    def __init__(self, rows: Iterable[Sequence[Any]], policy: Policy, now: datetime) -> None:
        self._tokens: dict[tuple[str, str], dict[str, datetime]] = {}
        self._principals: dict[tuple[str, str], dict[str, datetime]] = {}
        self._policy, self._now = policy, now
        self._since = now - timedelta(days=policy.usage_lookback_days)
        for workspace, principal_id, token_id, scope, last_seen in rows:
            if last_seen is None:
                continue
            if last_seen.tzinfo is None:
                last_seen = last_seen.replace(tzinfo=UTC)
            if token_id:
                target = self._tokens.setdefault((workspace, token_id), {})
            else:
                target = self._principals.setdefault((workspace, principal_id), {})
            if scope not in target or target[scope] < last_seen:
                target[scope] = last_seen

    def __bool__(self) -> bool:
        return bool(self._tokens or self._principals)

    def used_by(self, workspace: str, token_id: str, owner_id: str | None) -> dict[str, datetime]:
        """Last use of each scope by this token, exact and approximate together."""
        exact = self._tokens.get((workspace, token_id))
        approximate = self._principals.get((workspace, owner_id or ""))
        if not approximate:
            return dict(exact or {})
        merged = dict(approximate)
        for scope, last in (exact or {}).items():
            if scope not in merged or merged[scope] < last:
                merged[scope] = last
        return merged

    def rare_for(self, facts: TokenFacts, owner_id: str | None) -> Mapping[str, date]:
        tokens, principals = self._tokens, self._principals
        if (facts.workspace, facts.token_id) not in tokens and (
            facts.workspace,
            owner_id or "",
        ) not in principals:
            return NO_RARE_SCOPES
        observing = is_observing(facts)
        if not _applies(facts.autoscope_state, observing):
            return NO_RARE_SCOPES
        start, end = _window(facts, self._policy, self._now, observing, narrowed_at=None)
        used = self.used_by(facts.workspace, facts.token_id, owner_id)
        found = rare_scopes(
            used, inferred=facts.inferred_scopes, window_start=start, window_end=end, since=self._since
        )
        return found or NO_RARE_SCOPES


def _window(
    facts: TokenFacts, policy: Policy, now: datetime, observing: bool, narrowed_at: datetime | None
) -> tuple[datetime, datetime | None]:
    """The token's observation window: (start, end), end None while it is still open."""
    observation = timedelta(days=policy.autoscope_observation_days)
    end = facts.enforcement_at if facts.enforcement_at is not None else narrowed_at
    if end is not None and (not observing or facts.enforcement_at is not None):
        return end - observation, (None if observing else end)
    if not observing:
        return now - observation, None
    if facts.observation_started_at is not None:
        return facts.observation_started_at, None
    created = facts.created_at
    rollout = policy.autoscope_rollout_date
    if rollout is not None:
        rollout_at = datetime.combine(rollout, datetime.min.time(), tzinfo=UTC)
        return max(created, rollout_at), None
    return created, None


def load_index(
    *, session: Session, policy: Policy, now: datetime, workspace: str | None = None
) -> UsageIndex:
    """The usage rows with a scope, last seen within the lookback: one query."""
    since = now - timedelta(days=policy.usage_lookback_days)
    query = select(
        ApiUsage.workspace, ApiUsage.principal_id, ApiUsage.token_id, ApiUsage.scope, ApiUsage.last_seen
    ).where(ApiUsage.scope.is_not(None), ApiUsage.last_seen >= since)
    if workspace:
        query = query.where(ApiUsage.workspace == workspace)
    return UsageIndex(session.execute(query), policy, now)


def rare_scopes_of(*, session: Session, policy: Policy, now: datetime, token: Token) -> dict[str, date]:
    """The token's rare scopes (for the Confirm scopes modal and the narrowing message). For a
    narrowed token, the observation window is the one that ended at `narrowed_at`."""
    state = token.autoscope_state
    facts = _facts(token, now)
    observing = is_observing(facts)
    if not _applies(state, observing):
        return {}
    since = now - timedelta(days=policy.usage_lookback_days)
    used = scopes_used_by(session=session, policy=policy, now=now, token=token)
    start, end = _window(facts, policy, now, observing, narrowed_at=token.narrowed_at)
    return rare_scopes(used, inferred=facts.inferred_scopes, window_start=start, window_end=end, since=since)


def scopes_used_by(*, session: Session, policy: Policy, now: datetime, token: Token) -> dict[str, datetime]:
    """The last use of each scope by this token within the lookback (its owner's calls count for
    it where the audit log cannot tell the token: approximate, never too rarely)."""
    since = now - timedelta(days=policy.usage_lookback_days)
    rows = session.execute(
        select(
            ApiUsage.workspace, ApiUsage.principal_id, ApiUsage.token_id, ApiUsage.scope, ApiUsage.last_seen
        ).where(
            ApiUsage.workspace == token.workspace,
            ApiUsage.scope.is_not(None),
            ApiUsage.last_seen >= since,
            (ApiUsage.token_id == token.token_id)
            | ((ApiUsage.token_id == "") & (ApiUsage.principal_id == (token.owner_id or ""))),
        )
    )
    return UsageIndex(rows, policy, now).used_by(token.workspace, token.token_id, token.owner_id)


def has_usage(*, session: Session, workspace: str) -> bool:
    """Whether any audit usage was ever stored for the workspace."""
    return (
        session.execute(select(ApiUsage.id).where(ApiUsage.workspace == workspace).limit(1)).first()
        is not None
    )


def unmapped_services(*, session: Session, workspace: str, principal_id: str, token_id: str) -> list[str]:
    """Services this token (or its owner) called that no known scope covers: shown, never dropped."""
    rows = session.execute(
        select(ApiUsage.service_name).where(
            ApiUsage.workspace == workspace,
            ApiUsage.scope.is_(None),
            (ApiUsage.token_id == token_id)
            | ((ApiUsage.token_id == "") & (ApiUsage.principal_id == principal_id)),
        )
    ).scalars()
    return sorted(set(rows))


def _facts(token: Token, now: datetime) -> TokenFacts:
    return TokenFacts(
        workspace=token.workspace,
        token_id=token.token_id,
        owner_kind=None,
        owner_active=None,
        owner_resolved=True,
        comment=token.comment or "",
        created_at=token.created_at or token.first_seen_at or now,
        expires_at=token.expires_at,
        last_used_on=token.last_used_on,
        scopes=tuple(token.scopes or ()),
        inferred_scopes=tuple(token.inferred_scopes or ()),
        autoscope_state=token.autoscope_state,
        observation_started_at=token.observation_started_at,
        enforcement_at=token.enforcement_at,
        workspace_max_lifetime_days=None,
    )
