"""Sync every workspace's tokens into the database and record what changed.

Fetching (network) runs for several workspaces at once in a bounded thread pool; writing runs in
the calling thread, one transaction per workspace as each fetch completes, so SQLite sees a single
writer and one failed workspace never touches another's rows. A workspace whose fetch fails keeps
its records untouched (nothing is marked gone) and is marked `stale` with the error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlmodel import Session

from bot import clock, controls
from bot.databricks.records import GatewayError, Inventory, PrincipalRecord, TokenRecord, WorkspaceGateway
from bot.db import session_scope
from bot.domain.policy import Policy
from bot.domain.tokens import AUTOSCOPE_COMPLETED, AUTOSCOPE_RUNNING
from bot.models import Principal, Token, Workspace, WorkspaceStatus
from bot.services import events

logger = logging.getLogger(__name__)

PRINCIPAL_REFRESH = timedelta(days=1)
WRITE_BATCH = 1000

# Token columns that come from Databricks and are compared on every sync.
_SYNCED = (
    "owner_id",
    "created_by",
    "comment",
    "created_at",
    "expires_at",
    "last_used_on",
    "scopes",
    "inferred_scopes",
    "backfill_scopes",
    "autoscope_state",
)


@dataclass
class SyncResult:
    workspace: str
    ok: bool
    tokens: int = 0
    new: int = 0
    gone: int = 0
    changed: int = 0
    narrowed: int = 0
    seconds: float = 0.0
    error: str | None = None
    held: bool = False  # the listing shrank suspiciously: nothing was written (see _suspicious_shrink)
    narrowed_tokens: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


GatewayFactory = Callable[[str], WorkspaceGateway]


def sync_workspaces(
    *,
    engine: Engine,
    workspaces: Sequence[tuple[str, str]],
    gateway_for: GatewayFactory,
    policy: Policy,
    max_parallel: int = 4,
    on_done: Callable[[SyncResult], None] | None = None,
    accept_shrink: frozenset[str] = frozenset(),
) -> list[SyncResult]:
    """Sync `(name, host)` workspaces; results in the order given, failures included."""
    started = {name: time.perf_counter() for name, _ in workspaces}
    with session_scope(engine) as session:
        for name, host in workspaces:
            _ensure_workspace(session, name, host)
        known = {name: _fresh_principals(session, name, clock.now()) for name, _ in workspaces}

    results: dict[str, SyncResult] = {}
    with ThreadPoolExecutor(
        max_workers=max(1, min(max_parallel, len(workspaces))), thread_name_prefix="sync"
    ) as pool:
        futures = {pool.submit(_fetch, gateway_for, name, known[name]): name for name, _ in workspaces}
        for future in as_completed(futures):
            name = futures[future]
            inventory_or_error = future.result()
            with session_scope(engine) as session:
                if isinstance(inventory_or_error, GatewayError):
                    result = mark_stale(session=session, workspace=name, error=inventory_or_error.message)
                else:
                    result = apply_inventory(
                        session=session,
                        workspace=name,
                        inventory=inventory_or_error,
                        policy=policy,
                        now=clock.now(),
                        accept_shrink=name in accept_shrink,
                    )
            result.seconds = round(time.perf_counter() - started[name], 3)
            results[name] = result
            logger.debug("sync %s: %s", name, _summary(result))  # callers report the results
            if on_done:
                on_done(result)
    return [results[name] for name, _ in workspaces]


def _fetch(gateway_for: GatewayFactory, name: str, known: frozenset[str]) -> Inventory | GatewayError:
    try:
        return gateway_for(name).fetch_inventory(known_principals=known)
    except GatewayError as error:
        return error
    except Exception as error:  # one workspace's surprise must not stop the others
        logger.exception("sync %s: unexpected failure", name)
        return GatewayError("other", f"unexpected error: {type(error).__name__}: {error}")


def _summary(result: SyncResult) -> str:
    if not result.ok:
        return f"failed: {result.error}"
    return (
        f"{result.tokens} tokens, {result.new} new, {result.gone} gone, {result.changed} changed "
        f"({result.narrowed} narrowed) in {result.seconds:.1f} s"
    )


def _ensure_workspace(session: Session, name: str, host: str) -> None:
    row = session.get(Workspace, name)
    if row is None:
        session.add(Workspace(name=name, host=host))
    elif row.host != host:
        row.host = host
    session.flush()


def _fresh_principals(session: Session, workspace: str, now: datetime) -> frozenset[str]:
    """Principals resolved within the last day: no SCIM request for them this time."""
    rows = session.execute(
        select(Principal.principal_id).where(
            Principal.workspace == workspace, Principal.resolved_at >= now - PRINCIPAL_REFRESH
        )
    ).scalars()
    return frozenset(rows)


def mark_stale(*, session: Session, workspace: str, error: str) -> SyncResult:
    row = session.get(Workspace, workspace)
    row.status = WorkspaceStatus.STALE
    row.last_error = error[:2000]
    row.last_sync_at = clock.now()
    session.flush()
    return SyncResult(workspace=workspace, ok=False, error=error)


def apply_inventory(
    *,
    session: Session,
    workspace: str,
    inventory: Inventory,
    policy: Policy,
    now: datetime,
    accept_shrink: bool = False,
) -> SyncResult:
    """Upsert one workspace's listing and detect new, gone, changed and narrowed tokens.

    A listing that suddenly lost more than `policy.max_gone_fraction` of the live tokens (say an
    empty answer after a permission change) is held instead: nothing is written, the workspace is
    marked `held`, and an admin confirms with `accept_shrink` once they know it is real.
    """
    result = SyncResult(workspace=workspace, ok=True, tokens=len(inventory.tokens))

    existing = {
        row.token_id: row
        for row in session.execute(
            select(
                *[
                    getattr(Token, c)
                    for c in ("id", "token_id", "gone_at", "observation_started_at", *_SYNCED)
                ]
            ).where(Token.workspace == workspace)
        )
    }
    shrink = _suspicious_shrink(existing, inventory, policy, now)
    if shrink and not accept_shrink:
        return _hold(session, workspace, shrink, now)
    _upsert_principals(session, workspace, inventory.principals, now)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for record in inventory.tokens:
        values = _synced_values(record)
        old = existing.get(record.token_id)
        if old is None:
            values.update(
                previous_scopes=[],
                workspace=workspace,
                token_id=record.token_id,
                first_seen_at=now,
                last_seen_at=now,
                observation_started_at=_observation_start(record, None, policy),
            )
            inserts.append(values)
            result.new += 1
            continue
        values["last_used_on"] = _best_last_use(old.last_used_on, record.last_used_on)
        change = {c: values[c] for c in _SYNCED if _differs(getattr(old, c), values[c])}
        start = _observation_start(record, old.observation_started_at, policy)
        if start != old.observation_started_at:
            change["observation_started_at"] = start
        if old.gone_at is not None:  # listed again after being missed: it was never gone
            change.update(gone_at=None, gone_reason=None)
        if _narrowed(old, record):
            change.update(previous_scopes=list(old.scopes), narrowed_at=now)
            result.narrowed += 1
            result.narrowed_tokens.append(record.token_id)
        if change:
            change["id"] = old.id
            updates.append(change)
            result.changed += 1

    for batch in _batches(inserts):
        session.execute(insert(Token), batch)
    # Rows differ in which columns change; group them so each executemany has one shape.
    for batch in _batches(updates):
        for shape in _by_shape(batch):
            session.execute(update(Token), shape)

    listed = {record.token_id for record in inventory.tokens}
    gone = [row for token_id, row in existing.items() if row.gone_at is None and token_id not in listed]
    for row in gone:
        reason = "expired" if row.expires_at is not None and row.expires_at <= now else "revoked"
        session.execute(update(Token).where(Token.id == row.id).values(gone_at=now, gone_reason=reason))
    result.gone = len(gone)

    session.execute(
        update(Token).where(Token.workspace == workspace, Token.gone_at.is_(None)).values(last_seen_at=now)
    )
    row = session.get(Workspace, workspace)
    row.status, row.last_error = WorkspaceStatus.OK, None
    row.last_sync_at = row.last_success_at = now
    row.max_token_lifetime_days = inventory.max_token_lifetime_days
    row.token_count = len(inventory.tokens)
    session.flush()
    events.apply_pending(session=session, workspace=workspace, now=now)  # events that came first
    return result


MIN_VANISHED_TO_HOLD = 3  # a handful of revocations (or of tokens re-scoped) in a small workspace is ordinary

# Fields whose loss on many tokens at once means a bad listing, not a change: (name, had it, lost it).
_LOST_FIELDS: tuple[tuple[str, Callable[[Any], bool], Callable[[TokenRecord], bool]], ...] = (
    ("last_used_day", lambda row: row.last_used_on is not None, lambda record: record.last_used_on is None),
    ("scopes", lambda row: bool(row.scopes), lambda record: not record.scopes),
    ("expiry_time", lambda row: row.expires_at is not None, lambda record: record.expires_at is None),
)


def _suspicious_shrink(
    existing: dict[str, Any], inventory: Inventory, policy: Policy, now: datetime
) -> str | None:
    """Why this listing looks wrong, or None: it lost more than `policy.max_gone_fraction` of the
    live tokens, or that many tokens lost a field they had at the last good sync (last use, every
    scope, expiry). Tokens past their expiry are expected to vanish."""
    live = [row for row in existing.values() if row.gone_at is None]
    listed = {record.token_id: record for record in inventory.tokens}
    vanished = [
        row
        for row in live
        if row.token_id not in listed and not (row.expires_at is not None and row.expires_at <= now)
    ]
    if _too_many(len(vanished), len(live), policy):
        return (
            f"the listing shrank from {len(live)} to {len(inventory.tokens)} tokens ({len(vanished)} "
            f"vanished, more than {policy.max_gone_fraction:.0%}): held, nothing marked gone"
        )
    for name, had, lost in _LOST_FIELDS:
        count = sum(1 for row in live if row.token_id in listed and had(row) and lost(listed[row.token_id]))
        if _too_many(count, len(live), policy):
            return (
                f"the listing lost {name} on {count} of {len(live)} tokens that had it at the last good sync "
                f"(more than {policy.max_gone_fraction:.0%}): held, nothing changed"
            )
    return None


def _too_many(count: int, live: int, policy: Policy) -> bool:
    return count > MIN_VANISHED_TO_HOLD and count > policy.max_gone_fraction * live


def _best_last_use(known: datetime | None, listed: datetime | None) -> datetime | None:
    """The latest use anyone reported: a listing that dropped the field (or went back in time) does
    not erase what the last good sync saw, so enforcement never takes a used token for an idle one."""
    if known is None or listed is None:
        return listed or known
    return max(known, listed, key=lambda moment: moment.astimezone(UTC))


def _hold(session: Session, workspace: str, why: str, now: datetime) -> SyncResult:
    row = session.get(Workspace, workspace)
    row.status = WorkspaceStatus.HELD
    row.last_error = f"{why}. If it is real, run `tokenbot sync --accept-shrink {workspace}`"
    row.last_sync_at = now
    session.flush()
    return SyncResult(workspace=workspace, ok=False, held=True, error=row.last_error)


def _synced_values(record: TokenRecord) -> dict[str, Any]:
    return {
        "owner_id": record.owner_id,
        "created_by": record.created_by,
        "comment": record.comment,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_on": record.last_used_on,
        "scopes": list(record.scopes),
        "inferred_scopes": list(record.inferred_scopes),
        "backfill_scopes": list(record.backfill_scopes),
        "autoscope_state": record.autoscope_state,
    }


def _differs(old: Any, new: Any) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        return old.astimezone(UTC) != new.astimezone(UTC)
    return old != new


def _narrowed(old: Any, record: TokenRecord) -> bool:
    """Auto-scoping enforced: observed -> completed, or the scopes shrank to a strict subset."""
    if old.autoscope_state == AUTOSCOPE_RUNNING and record.autoscope_state == AUTOSCOPE_COMPLETED:
        return True
    old_scopes, new_scopes = set(old.scopes or ()), set(record.scopes)
    # No scopes means full access in Databricks, so narrowing from none to some counts too.
    if not old_scopes:
        return bool(new_scopes) and record.autoscope_state == AUTOSCOPE_COMPLETED
    return bool(new_scopes) and new_scopes < old_scopes


def _observation_start(record: TokenRecord, known: datetime | None, policy: Policy) -> datetime | None:
    """When the 30-day watch began: kept once set; else the later of creation and the rollout date."""
    if known is not None or record.autoscope_state != AUTOSCOPE_RUNNING:
        return known
    start = record.created_at
    if policy.autoscope_rollout_date is not None:
        rollout = datetime.combine(policy.autoscope_rollout_date, datetime.min.time(), tzinfo=UTC)
        start = rollout if start is None else max(start, rollout)
    return start


def _upsert_principals(
    session: Session, workspace: str, principals: Sequence[PrincipalRecord], now: datetime
) -> None:
    if not principals:
        return
    ids = [p.principal_id for p in principals]
    existing: dict[str, int] = {}
    for batch in _batches(ids):
        existing.update(
            session.execute(
                select(Principal.principal_id, Principal.id).where(
                    Principal.workspace == workspace, Principal.principal_id.in_(batch)
                )
            ).all()
        )
    inserts, updates = [], []
    for principal in principals:
        values = {
            "kind": principal.kind,
            "email": principal.email,
            "application_id": principal.application_id,
            "display_name": principal.display_name,
            "active": principal.active,
            "resolved_at": now,
        }
        if principal.principal_id in existing:
            updates.append({"id": existing[principal.principal_id], **values})
        else:
            inserts.append({"workspace": workspace, "principal_id": principal.principal_id, **values})
    for batch in _batches(inserts):
        session.execute(insert(Principal), batch)
    for batch in _batches(updates):
        session.execute(update(Principal), batch)


def _batches(items: Sequence[Any], size: int = WRITE_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _by_shape(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    shapes: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(frozenset(row), []).append(row)
    return list(shapes.values())


def sync_line(result: SyncResult) -> str:
    """One workspace's sync as one line, for the terminal and for `/tokens sync`."""
    error = controls.strip(result.error or "")
    if result.held:
        return f"{result.workspace}: HELD: {error}"
    if not result.ok:
        return f"{result.workspace}: FAILED after {result.seconds:.1f} s: {error}"
    return (
        f"{result.workspace}: {result.tokens} tokens, {result.new} new, {result.gone} gone, "
        f"{result.changed} changed ({result.narrowed} narrowed) in {result.seconds:.1f} s"
    )
