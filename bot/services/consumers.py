"""Who uses each token, from the audit log (`tokenconsumer`, `auditread`): stored by each audit
read (`bot.services.audit_read`), read back wherever a decision is made.

The warehouse
groups the events of each token's login sessions per token, user agent and source address
(bot/databricks/consumers.py); here they become one row per token, client family and network
(`bot.domain.clients`). A workspace's rows are replaced as a whole: they are what the lookback
window holds now.

`auditread` keeps, per workspace, the last successful read and the newest audit event it saw:
a token with no rows is "not used" only when that read is recent and the log is not behind
(`bot.domain.clients.coverage`); otherwise tokenbot says the usage data is unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel import Session

from bot.databricks.records import AuditConsumers
from bot.db import get_or_add
from bot.domain.clients import (
    NO_CONSUMERS,
    TokenConsumers,
    Use,
    as_consumers,
    clean_agent,
    client_family,
    coverage,
    network_of,
    summarise,
)
from bot.models import ConsumerRead, Token, TokenConsumer

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


def store(
    *, session: Session, workspace: str, audit: AuditConsumers, now: datetime
) -> tuple[ConsumersResult, dict[str, list[Use]]]:
    """Replace the workspace's consumer rows with what the read saw; returns the result and the
    uses per token (for the misuse rules)."""
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
    read = get_or_add(session, ConsumerRead, workspace)
    read.read_at, read.through, read.attempted_at, read.error = now, audit.through, now, None
    session.flush()
    return result, uses


def record_failure(*, session: Session, workspace: str, error: str, now: datetime) -> None:
    """A failed read: the previous rows stay (their read time shows how old they are)."""
    read = get_or_add(session, ConsumerRead, workspace)
    read.attempted_at, read.error = now, error[:2000]


def _uses(audit: AuditConsumers, known: set[str]) -> dict[str, list[Use]]:
    """token -> one Use per client family and network (the warehouse's rows are per raw agent
    and address); tokens tokenbot does not know in the workspace are left out."""
    merged: dict[tuple[str, str, str], Use] = {}
    for row in audit.uses:
        if row.token_id not in known or row.first_seen is None or row.last_seen is None:
            continue
        client, network = client_family(row.user_agent), network_of(row.source_ip)
        key = (row.token_id, client, network)
        agent = clean_agent(row.user_agent, AGENT_CHARS)
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
    query = select(ConsumerRead).where(ConsumerRead.workspace.in_(workspaces))
    reads = {read.workspace: read for read in session.execute(query).scalars()}
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


def report_field(*, session: Session, workspace: str | None = None) -> dict[tuple[str, str], list[dict]]:
    """The report's `consumers` of every token that has some (one query; the others have [])."""
    query = select(TokenConsumer)
    if workspace:
        query = query.where(TokenConsumer.workspace == workspace)
    uses: dict[tuple[str, str], list[Use]] = {}
    for row in session.execute(query).scalars():
        uses.setdefault((row.workspace, row.token_id), []).append(
            Use(row.client, row.network, row.first_seen, row.last_seen, row.calls, row.agent)
        )
    return {key: [c.as_dict() for c in summarise(found)] for key, found in uses.items()}


def workspace_coverage(*, session: Session, workspace: str, now: datetime):
    read = session.get(ConsumerRead, workspace)
    return coverage(read.read_at if read else None, read.through if read else None, now)
