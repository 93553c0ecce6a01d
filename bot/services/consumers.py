"""Who uses each token, from the audit log (`tokenconsumer`, `auditread`), and the misuse
signals the same read shows (recorded by `bot.services.misuse`).

`refresh_all` is the audit read of `tokenbot usage refresh` and its daily job: the API usage
(`bot.services.usage`), then, for each workspace it read, who used each token. The warehouse
groups the events of each token's login sessions per token, user agent and source address
(bot/databricks/consumers.py); here they become one row per token, client family and network
(`bot.domain.clients`). A workspace's rows are replaced as a whole: they are what the lookback
window holds now. The same read's misuse signals (`bot.domain.misuse`) are recorded.

`auditread` keeps, per workspace, the last successful read and the newest audit event it saw:
a token with no rows is "not used" only when that read is recent and the log is not behind
(`bot.domain.clients.coverage`); otherwise tokenbot says the usage data is unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, select
from sqlmodel import Session

from bot.databricks.records import AuditConsumers, ConsumersGateway, GatewayError
from bot.db import session_scope
from bot.domain import misuse as rules
from bot.domain.clients import (
    NO_CONSUMERS,
    TokenConsumers,
    Use,
    as_consumers,
    client_family,
    coverage,
    network_of,
)
from bot.domain.policy import Policy
from bot.models import AuditRead, Principal, Token, TokenConsumer
from bot.services import misuse, usage

if TYPE_CHECKING:
    from bot.config import Settings

logger = logging.getLogger(__name__)

AGENT_CHARS = 300  # of the raw user agent kept beside its client


@dataclass
class ConsumersResult:
    """One workspace's consumers refresh."""

    rows: int = 0  # tokenconsumer rows written
    tokens: int = 0  # tokens with at least one consumer
    events: int = 0  # audit events in the window (all identities)
    through: str | None = None  # the newest audit event
    findings: int = 0  # new misuse findings recorded
    error: str | None = None


def refresh_all(
    *,
    engine: Engine,
    settings: Settings,
    gateway_for: Callable[[str], Any],
    now: datetime,
    workspaces: Iterable[str] | None = None,
    max_wait_seconds: float = 600.0,
) -> list[usage.UsageResult]:
    """`usage.refresh_usage`, then the consumers and misuse signals of every workspace it read
    (a consumers failure makes the workspace's result failed, with the reason)."""
    results = usage.refresh_usage(
        engine=engine,
        settings=settings,
        gateway_for=gateway_for,
        now=now,
        workspaces=workspaces,
        max_wait_seconds=max_wait_seconds,
    )
    warehouses = {w.name: w.audit_warehouse_id for w in settings.workspaces}
    for result in results:
        if not result.ok or result.skipped:
            continue
        found = refresh(
            engine=engine,
            workspace=result.workspace,
            warehouse_id=warehouses[result.workspace],
            gateway=gateway_for(result.workspace),
            policy=settings.policy,
            now=now,
            max_wait_seconds=max_wait_seconds,
        )
        result.consumers, result.misuse_findings = found.rows, found.findings
        if found.error:
            result.ok, result.error = False, f"who uses each token: {found.error}"
    return results


def refresh(
    *,
    engine: Engine,
    workspace: str,
    warehouse_id: str,
    gateway: ConsumersGateway,
    policy: Policy,
    now: datetime,
    max_wait_seconds: float,
) -> ConsumersResult:
    """Read, store, detect, for one workspace; a read failure is recorded in `auditread` (the
    previous rows stay, and their age shows) and returned, never raised."""
    since = now - timedelta(days=policy.usage_lookback_days)
    recent_since = now - timedelta(days=policy.misuse.recent_days)
    try:
        audit = gateway.audit_consumers(warehouse_id, since, recent_since, max_wait_seconds=max_wait_seconds)
    except GatewayError as error:
        message = error.message
    except Exception as error:  # one workspace's surprise must not stop the others
        logger.exception("consumers refresh %s: unexpected failure", workspace)
        message = f"unexpected error: {type(error).__name__}: {error}"
    else:
        with session_scope(engine) as session:
            return store(session=session, workspace=workspace, audit=audit, policy=policy, now=now)
    logger.error("consumers refresh %s: %s", workspace, message)
    with session_scope(engine) as session:
        read = _audit_read(session, workspace)
        read.attempted_at, read.error = now, message[:2000]
    return ConsumersResult(error=message)


def store(
    *, session: Session, workspace: str, audit: AuditConsumers, policy: Policy, now: datetime
) -> ConsumersResult:
    """Replace the workspace's consumer rows with what the read saw; record its misuse signals."""
    result = ConsumersResult(
        events=audit.events, through=audit.through.isoformat() if audit.through else None
    )
    known = set(session.execute(select(Token.token_id).where(Token.workspace == workspace)).scalars())
    uses = _uses(audit, known)
    session.execute(delete(TokenConsumer).where(TokenConsumer.workspace == workspace))
    for token_id, rows in uses.items():
        for use in rows:
            session.add(
                TokenConsumer(
                    workspace=workspace,
                    token_id=token_id,
                    client=use.client[:100],
                    agent=use.agent,
                    network=use.network,
                    first_seen=use.first_seen,
                    last_seen=use.last_seen,
                    calls=use.calls,
                )
            )
            result.rows += 1
    result.tokens = len(uses)
    read = _audit_read(session, workspace)
    read.read_at, read.through, read.attempted_at, read.error = now, audit.through, now, None
    session.flush()
    signals = rules.detect(
        workspace=workspace,
        uses=uses,
        daily=_daily(audit, known),
        failed=_failed(audit),
        owner_inactive=_owner_inactive(session, workspace),
        policy=policy.misuse,
        now=now,
    )
    result.findings = misuse.record(session=session, signals=signals, now=now)
    return result


def _uses(audit: AuditConsumers, known: set[str]) -> dict[str, list[Use]]:
    """token -> one Use per client family and network (the warehouse's rows are per raw agent
    and address); tokens tokenbot does not know in the workspace are left out."""
    merged: dict[tuple[str, str, str], Use] = {}
    for row in audit.uses:
        if row.token_id not in known or row.first_seen is None or row.last_seen is None:
            continue
        client, network = client_family(row.user_agent), network_of(row.source_ip)
        key = (row.token_id, client, network)
        agent = " ".join((row.user_agent or "").split())[:AGENT_CHARS]
        before = merged.get(key)
        if before is None:
            merged[key] = Use(client, network, row.first_seen, row.last_seen, row.calls, agent)
        else:
            merged[key] = Use(
                client,
                network,
                min(before.first_seen, row.first_seen),
                max(before.last_seen, row.last_seen),
                before.calls + row.calls,
                before.agent if before.last_seen >= row.last_seen else agent,
            )
    found: dict[str, list[Use]] = {}
    for (token_id, _, _), use in sorted(merged.items()):
        found.setdefault(token_id, []).append(use)
    return found


def _daily(audit: AuditConsumers, known: set[str]) -> list[rules.DailyUse]:
    return [
        rules.DailyUse(
            row.token_id, row.day, client_family(row.user_agent), network_of(row.source_ip), row.calls
        )
        for row in audit.daily
        if row.token_id in known and row.day is not None
    ]


def _failed(audit: AuditConsumers) -> list[rules.FailedDay]:
    # Failed logins count for any token id the log names, known to tokenbot or not: a guessed or
    # revoked token being tried is worth a look either way.
    return [
        rules.FailedDay(
            row.token_id, row.day, network_of(row.source_ip), row.failures, row.first_seen, row.last_seen
        )
        for row in audit.failed_logins
        if row.day is not None and row.first_seen is not None and row.last_seen is not None
    ]


def _owner_inactive(session: Session, workspace: str) -> list[str]:
    rows = session.execute(
        select(Token.token_id)
        .join(
            Principal, (Principal.workspace == Token.workspace) & (Principal.principal_id == Token.owner_id)
        )
        .where(Token.workspace == workspace, Token.gone_at.is_(None), Principal.active.is_(False))
    )
    return list(rows.scalars())


def _audit_read(session: Session, workspace: str) -> AuditRead:
    read = session.get(AuditRead, workspace)
    if read is None:
        read = AuditRead(workspace=workspace)
        session.add(read)
    return read


# ---------------------------------------------------------------------------------------------
# reading them back


def of_tokens(
    *, session: Session, keys: Iterable[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], TokenConsumers]:
    """(workspace, token_id) -> its consumers and how far the audit log covers them; every key
    asked for is in the answer (with no consumers when none were seen)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    workspaces = sorted({workspace for workspace, _ in keys})
    reads = {
        read.workspace: read
        for read in session.execute(select(AuditRead).where(AuditRead.workspace.in_(workspaces))).scalars()
    }
    wanted = set(keys)
    uses: dict[tuple[str, str], list[Use]] = {}
    token_ids = sorted({token_id for _, token_id in keys})
    query = select(TokenConsumer).where(TokenConsumer.workspace.in_(workspaces))
    if len(token_ids) <= 500:
        query = query.where(TokenConsumer.token_id.in_(token_ids))
    for row in session.execute(query).scalars():
        key = (row.workspace, row.token_id)
        if key in wanted:
            uses.setdefault(key, []).append(
                Use(row.client, row.network, row.first_seen, row.last_seen, row.calls, row.agent)
            )
    found = {}
    for key in keys:
        read = reads.get(key[0])
        if read is None:
            found[key] = NO_CONSUMERS
        else:
            found[key] = as_consumers(uses.get(key, []), read.read_at, read.through, now)
    return found


def of_token(*, session: Session, workspace: str, token_id: str, now: datetime) -> TokenConsumers:
    return of_tokens(session=session, keys=[(workspace, token_id)], now=now)[(workspace, token_id)]


def attach(*, session: Session, views: Iterable, now: datetime) -> None:
    """Fill `view.consumers` of report views (one query for all of them)."""
    views = list(views)
    found = of_tokens(session=session, keys=[(v.workspace, v.token_id) for v in views], now=now)
    for view in views:
        view.consumers = found[(view.workspace, view.token_id)]


def as_json(
    found: Mapping[tuple[str, str], TokenConsumers],
) -> dict[tuple[str, str], list[dict[str, object]]]:
    """The report's `consumers` field per token."""
    return {key: [c.as_dict() for c in value.consumers] for key, value in found.items()}


def workspace_coverage(*, session: Session, workspace: str, now: datetime):
    read = session.get(AuditRead, workspace)
    return coverage(read.read_at if read else None, read.through if read else None, now)
