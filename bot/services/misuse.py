"""Misuse findings (`misusefinding`): recorded once, posted to the admins channel once, and
acknowledged or revoked by an admin.

- `record` writes each signal of an audit read (`bot.domain.misuse.detect`) under its key; a key
  already recorded, by this run, an earlier one or another replica (the unique key decides), is
  left alone. So a finding is never recorded, nor posted, twice.
- `post_pending` claims the unposted findings (a conditional update: one run wins each row),
  posts each with its evidence, and records the message; a failed post is tried again by the next
  run, up to `MAX_ATTEMPTS`. A claim left by a crashed run is released after `STALE_CLAIM`.
- `acknowledge` and `revoke` are admins' only: everyone else is refused (a decision row says so).
  Revoke is the decisions service's revoke (its checks, its record, dry run and all).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.db import session_scope
from bot.domain.misuse import MisuseKind, Signal
from bot.enums import ActorRole, DecisionAction, DecisionStatus, MisuseStatus
from bot.models import MisuseFinding, Principal, Token
from bot.services import decisions
from bot.services.decisions import Actor, Outcome, ledger, wording
from bot.services.inventory import GatewayFactory
from bot.services.ports import Delivery, DeliveryError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
STALE_CLAIM = timedelta(minutes=10)
POST_BATCH = 50  # findings posted per run at most; the rest wait for the next


# ---------------------------------------------------------------------------------------------
# record


def record(*, session: Session, signals: Iterable[Signal], now: datetime) -> int:
    """Insert the signals not recorded yet; returns how many were new."""
    signals = list({signal.key: signal for signal in signals}.values())
    if not signals:
        return 0
    keys = [signal.key for signal in signals]
    known = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        known |= set(session.execute(select(MisuseFinding.key).where(MisuseFinding.key.in_(chunk))).scalars())
    added = 0
    for signal in signals:
        if signal.key in known:
            continue
        row = MisuseFinding(
            key=signal.key,
            workspace=signal.workspace,
            token_id=signal.token_id,
            kind=str(signal.kind),
            evidence=dict(signal.evidence),
            detected_at=now,
            status=MisuseStatus.OPEN,
        )
        try:
            with session.begin_nested():  # another replica may insert the same key meanwhile
                session.add(row)
        except IntegrityError:
            continue
        added += 1
        logger.info("misuse finding %s recorded", signal.key)
    return added


# ---------------------------------------------------------------------------------------------
# post


@dataclass(frozen=True, slots=True)
class MisuseNotice:
    """A finding as the admins channel reads it: facts; the words are the Slack layer's."""

    finding_id: int
    kind: MisuseKind
    workspace: str
    token_id: str
    evidence: dict[str, Any]
    detected_at: datetime
    known_token: bool  # tokenbot has the token in its inventory
    comment: str = ""
    owner: str | None = None  # email or application id
    owner_slack_id: str | None = None
    owner_active: bool | None = None
    status: str = MisuseStatus.OPEN
    acted_by: str | None = None
    acted_at: datetime | None = None


class MisuseNotifier(Protocol):
    def post_finding(self, channel: str, notice: MisuseNotice) -> Delivery: ...

    def update_finding(self, channel: str, ts: str, notice: MisuseNotice) -> None: ...


@dataclass
class Posted:
    posted: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def post_pending(*, engine: Engine, notifier: MisuseNotifier, channel: str | None, now: datetime) -> Posted:
    """Post every recorded, unposted finding to the admins channel (see the module docstring)."""
    result = Posted()
    if not channel:
        return result
    runner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        session.execute(
            update(MisuseFinding)
            .where(
                MisuseFinding.posted_at.is_(None),
                MisuseFinding.claimed_by.is_not(None),
                MisuseFinding.claimed_at < now - STALE_CLAIM,
            )
            .values(claimed_by=None, claimed_at=None)
        )
        waiting = session.execute(
            select(MisuseFinding.id)
            .where(
                MisuseFinding.posted_at.is_(None),
                MisuseFinding.claimed_by.is_(None),
                MisuseFinding.attempts < MAX_ATTEMPTS,
            )
            .order_by(MisuseFinding.id)
            .limit(POST_BATCH)
        ).scalars()
        claimed = []
        for finding_id in list(waiting):
            won = session.execute(
                update(MisuseFinding)
                .where(
                    MisuseFinding.id == finding_id,
                    MisuseFinding.posted_at.is_(None),
                    MisuseFinding.claimed_by.is_(None),
                )
                .values(claimed_by=runner, claimed_at=now)
            )
            if won.rowcount == 1:
                claimed.append(finding_id)
    for finding_id in claimed:
        with session_scope(engine) as session:
            row = session.get(MisuseFinding, finding_id)
            notice = _notice(session, row)
        try:
            delivery = notifier.post_finding(channel, notice)
        except DeliveryError as error:
            with session_scope(engine) as session:
                row = session.get(MisuseFinding, finding_id)
                row.attempts += 1
                row.error, row.claimed_by, row.claimed_at = error.message[:2000], None, None
            result.failed += 1
            result.errors.append(error.message)
            logger.warning("misuse finding %s not posted: %s", finding_id, error.message)
            if error.kind == "ratelimited":
                break
            continue
        with session_scope(engine) as session:
            row = session.get(MisuseFinding, finding_id)
            row.channel, row.message_ts, row.posted_at = delivery.channel, delivery.ts, now
            row.attempts += 1
            row.error, row.claimed_by, row.claimed_at = None, None, None
        result.posted += 1
    return result


def notice_of(*, session: Session, finding_id: int) -> MisuseNotice | None:
    row = session.get(MisuseFinding, finding_id)
    return None if row is None else _notice(session, row)


def message_of(*, session: Session, finding_id: int) -> tuple[str, str] | None:
    """(channel, ts) of the finding's message, once posted."""
    row = session.get(MisuseFinding, finding_id)
    if row is None or not row.channel or not row.message_ts:
        return None
    return row.channel, row.message_ts


def _notice(session: Session, row: MisuseFinding) -> MisuseNotice:
    token = session.execute(
        select(Token).where(Token.workspace == row.workspace, Token.token_id == row.token_id)
    ).scalar_one_or_none()
    owner = None
    if token is not None and token.owner_id:
        owner = session.execute(
            select(Principal).where(
                Principal.workspace == token.workspace, Principal.principal_id == token.owner_id
            )
        ).scalar_one_or_none()
    return MisuseNotice(
        finding_id=row.id,
        kind=MisuseKind(row.kind),
        workspace=row.workspace,
        token_id=row.token_id,
        evidence=dict(row.evidence or {}),
        detected_at=row.detected_at,
        known_token=token is not None,
        comment=token.comment if token is not None else "",
        owner=(owner.email or owner.application_id) if owner is not None else None,
        owner_slack_id=(owner.owner_slack_id or owner.slack_user_id) if owner is not None else None,
        owner_active=owner.active if owner is not None else None,
        status=row.status,
        acted_by=row.acted_by,
        acted_at=row.acted_at,
    )


# ---------------------------------------------------------------------------------------------
# act


ACKNOWLEDGE = DecisionAction.ACKNOWLEDGE


def acknowledge(*, session: Session, actor: Actor, finding_id: int, now: datetime) -> Outcome:
    """An admin saw the finding and lets it be."""
    found = _for_an_admin(session, actor, ACKNOWLEDGE, finding_id)
    if isinstance(found, Outcome):
        return found
    row, token_pk, parameters = found
    role = _role(actor)
    if row.status != MisuseStatus.OPEN:
        message = f"This finding was already {row.status} by <@{row.acted_by}>."
        return ledger.refuse(session, actor, role, ACKNOWLEDGE, token_pk, parameters, "closed", message)
    row.status, row.acted_by, row.acted_at = MisuseStatus.ACKNOWLEDGED, actor.slack_id, now
    decision = ledger._new_decision(actor, role, ACKNOWLEDGE, token_pk, parameters, DecisionStatus.APPLIED)
    session.add(decision)
    session.flush()
    return ledger.outcome(decision, "Acknowledged: the finding is closed; the token is unchanged.")


def revoke(
    *,
    session: Session,
    gateway_for: GatewayFactory,
    actor: Actor,
    finding_id: int,
    dry_run: bool,
    now: datetime,
) -> Outcome:
    """Revoke the finding's token through the decisions service (admins only)."""
    found = _for_an_admin(session, actor, DecisionAction.REVOKE, finding_id)
    if isinstance(found, Outcome):
        return found
    row, token_pk, parameters = found
    if token_pk is None:
        return ledger.refuse(
            session,
            actor,
            _role(actor),
            DecisionAction.REVOKE,
            None,
            parameters,
            "unknown_token",
            wording.NOT_KNOWN,
        )
    outcome = decisions.revoke(
        session=session,
        gateway_for=gateway_for,
        actor=actor,
        token_pk=token_pk,
        reason=f"misuse finding: {row.kind.replace('_', ' ')}",
        dry_run=dry_run,
    )
    if outcome.status == DecisionStatus.APPLIED and not outcome.dry_run:
        row.status, row.acted_by, row.acted_at = MisuseStatus.REVOKED, actor.slack_id, now
    return outcome


def _for_an_admin(
    session: Session, actor: Actor, action: str, finding_id: int
) -> tuple[MisuseFinding, int | None, dict[str, Any]] | Outcome:
    """The finding (locked), its token's pk and the decision's parameters; or a recorded refusal
    when there is no such finding or the actor is not an admin."""
    row, token_pk = _finding(session, finding_id)
    parameters: dict[str, Any] = {"finding": finding_id}
    if row is None:
        return ledger.refuse(
            session, actor, _role(actor), action, None, parameters, "unknown_finding", UNKNOWN
        )
    if not actor.is_admin:
        return ledger.refuse(session, actor, _role(actor), action, token_pk, parameters, "not_admin", ADMINS)
    return row, token_pk, parameters


UNKNOWN = "tokenbot has no such finding; nothing was done."
ADMINS = wording.ADMINS_ONLY


def _finding(session: Session, finding_id: int) -> tuple[MisuseFinding | None, int | None]:
    row = ledger.lock(session, MisuseFinding, finding_id) if finding_id > 0 else None
    if row is None:
        return None, None
    token_pk = session.execute(
        select(Token.id).where(Token.workspace == row.workspace, Token.token_id == row.token_id)
    ).scalar_one_or_none()
    return row, token_pk


def _role(actor: Actor) -> str:
    return ActorRole.ADMIN if actor.is_admin else ActorRole.OTHER


def open_findings(*, session: Session, workspace: str | None = None) -> Sequence[MisuseFinding]:
    query = select(MisuseFinding).where(MisuseFinding.status == MisuseStatus.OPEN)
    if workspace:
        query = query.where(MisuseFinding.workspace == workspace)
    return list(session.execute(query.order_by(MisuseFinding.id)).scalars())
