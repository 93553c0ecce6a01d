"""The audit read of `tokenbot usage refresh` and its daily job: for every workspace with an
`audit_warehouse_id`, the API usage (`bot.services.usage`), then who used each token
(`bot.services.consumers`), then the misuse signals that read shows (`bot.domain.misuse`),
recorded once each (`bot.services.misuse`). Posting them is the caller's (it has Slack):
`misuse.post_pending`. So a finding is recorded by the very refresh that saw it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.databricks.records import AuditConsumers, ConsumersGateway, GatewayError
from bot.db import session_scope
from bot.domain import misuse as rules
from bot.domain.clients import client_family, network_of
from bot.domain.policy import Policy
from bot.models import Principal, Token
from bot.services import consumers, misuse, usage

if TYPE_CHECKING:
    from bot.config import Settings

logger = logging.getLogger(__name__)


def refresh_all(
    *,
    engine: Engine,
    settings: Settings,
    gateway_for: Callable[[str], Any],
    now: datetime,
    workspaces: Iterable[str] | None = None,
    max_wait_seconds: float = 600.0,
) -> list[usage.UsageResult]:
    """`usage.refresh_usage`, then consumers and misuse signals for every workspace it read (a
    consumers failure makes that workspace's result failed, with the reason)."""
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


@dataclass
class Refreshed:
    rows: int = 0  # tokenconsumer rows written
    findings: int = 0  # new misuse findings recorded
    error: str | None = None


def refresh(
    *,
    engine: Engine,
    workspace: str,
    warehouse_id: str,
    gateway: ConsumersGateway,
    policy: Policy,
    now: datetime,
    max_wait_seconds: float,
) -> Refreshed:
    """Read, store, detect, for one workspace, in one transaction; a read failure is recorded
    (the previous consumers stay, and their age shows) and returned, never raised."""
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
            stored, uses = consumers.store(session=session, workspace=workspace, audit=audit, now=now)
            signals = rules.detect(
                workspace=workspace,
                uses=uses,
                daily=_daily(audit, set(uses) | _known(session, workspace)),
                failed=_failed(audit),
                owner_inactive=_owner_inactive(session, workspace),
                policy=policy.misuse,
                now=now,
            )
            found = misuse.record(session=session, signals=signals, now=now)
        logger.info(
            "consumers refresh %s: %d client/network rows for %d tokens; %d new misuse finding(s)",
            workspace,
            stored.rows,
            stored.tokens,
            found,
        )
        return Refreshed(rows=stored.rows, findings=found)
    logger.error("consumers refresh %s: %s", workspace, message)
    with session_scope(engine) as session:
        consumers.record_failure(session=session, workspace=workspace, error=message, now=now)
    return Refreshed(error=message)


def _known(session: Session, workspace: str) -> set[str]:
    return set(session.execute(select(Token.token_id).where(Token.workspace == workspace)).scalars())


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
