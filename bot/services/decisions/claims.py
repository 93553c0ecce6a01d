"""Claims a stopped process left behind: a decision is claimed (`in_progress`) and committed before
Databricks is called, and its outcome is recorded afterwards (`ledger`). A process killed in
between leaves the claim `in_progress`, holding its key and keeping other decisions about the
token away. `settle` finds such claims once they are older than `CLAIM_TIMEOUT` and records what
Databricks says happened. It never repeats the call: a revoke whose token is still there is
recorded `failed` (its key released, so Retry, or enforcement, may claim again).

- revoke: the token is gone (404) -> `applied`; still there -> `failed`.
- confirm scopes / restore: `after` is recorded before the PATCH is sent; the live scopes are
  `after` -> `applied` (the token row takes them); else, or no `after` (stopped before the PATCH)
  -> `failed`.
- rotate: tokens marked by the rotation (`lost_answers.marks`) show whether the create happened.
  None -> `failed`. One -> `failed` with outcome "unknown" and that token, the state a rotation
  whose secret write nobody could check is in: `rotation._settle_rotations` reads the secret
  (written since the claim?) and settles it, in the same job.

A read that fails leaves the claim for the next run. Each claim is settled in its own short
transactions; the reads run with none held.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from bot.databricks.records import GatewayError, WorkspaceGateway
from bot.models import Decision, Token
from bot.services.decisions import actions, ledger, lost_answers, scopes
from bot.services.decisions.model import (
    APPLIED,
    CONFIRM_SCOPES,
    FAILED,
    IN_PROGRESS,
    RESTORE,
    REVOKE,
    ROTATE,
    GatewayFactory,
)

logger = logging.getLogger(__name__)

# Longer than any decision's Databricks calls can take (the SDK gives up retrying after
# `databricks.retry_timeout_seconds`, 300 s by default; a rotation makes up to six calls): a claim
# this old belongs to a process that stopped.
CLAIM_TIMEOUT = timedelta(minutes=15)
STOPPED = "tokenbot stopped before Databricks answered"


def settle(*, session: Session, gateway_for: GatewayFactory, now: datetime) -> dict[int, str]:
    """Settle every claim older than CLAIM_TIMEOUT; returns {decision id: status now} of those
    it could settle (the others stay `in_progress` for the next run)."""
    query = select(Decision.id).where(
        Decision.status == IN_PROGRESS, Decision.updated_at < now - CLAIM_TIMEOUT
    )
    stale = list(session.execute(query.order_by(Decision.id)).scalars())
    session.commit()
    settled = {}
    for decision_id in stale:
        try:
            status = _settle_one(session, gateway_for, decision_id)
            session.commit()
        except Exception:
            session.rollback()
            logger.exception("decision %s: settling the claim left in progress failed", decision_id)
            continue
        if status is not None:
            settled[decision_id] = status
    if stale:
        logger.warning(
            "%s decision(s) left in progress by a stopped process; settled: %s", len(stale), settled
        )
    return settled


def _settle_one(session: Session, gateway_for: GatewayFactory, decision_id: int) -> str | None:
    decision = session.get(Decision, decision_id, populate_existing=True)
    token_pk = decision.token_pk if decision is not None else None
    token = session.get(Token, token_pk, populate_existing=True) if token_pk else None
    if decision is None or token is None:
        return None
    session.commit()  # the reads below hold no transaction
    gateway = gateway_for(token.workspace)
    if decision.action == REVOKE:
        found = lost_answers.gone(gateway, token.token_id)
    elif decision.action in (CONFIRM_SCOPES, RESTORE):
        after = decision.parameters.get("after")
        found = lost_answers.scopes_set(gateway, token.token_id, after) if after is not None else False
    elif decision.action == ROTATE:
        found = _rotation_tokens(gateway, decision_id)
    else:  # nothing else is claimed across a call
        found = False
    if found is None:
        return None
    # Recorded under the token's lock, and only if nobody recorded it meanwhile.
    token = ledger.lock(session, Token, token.id)
    decision = ledger.lock(session, Decision, decision_id)
    if token is None or decision is None or decision.status != IN_PROGRESS:
        return None
    ledger.merge(decision, settled_after_stop=True)
    if decision.action == ROTATE:
        _record_rotation(decision, found)
    elif found:
        if decision.action == REVOKE:
            actions.mark_gone(token)
        else:
            scopes.set_scopes(token, list(decision.parameters["after"]))
        ledger.finish(decision, APPLIED, verified=True)
    else:
        ledger.finish(decision, FAILED, STOPPED, error_kind="stopped")
        ledger.release(decision, "failed")
    return decision.status


def _rotation_tokens(gateway: WorkspaceGateway, decision_id: int) -> list[str] | None:
    """The tokens rotation `decision_id` created (marked in their comment); None when unreadable."""
    try:
        tokens = gateway.list_tokens()
    except GatewayError as error:
        logger.warning("could not list tokens to settle rotation %s: %s", decision_id, error.message)
        return None
    return [t.token_id for t in tokens if decision_id in lost_answers.marks(t.comment)]


def _record_rotation(decision: Decision, created: list[str]) -> None:
    if not created:
        ledger.finish(decision, FAILED, STOPPED, error_kind="stopped", new_token_id=None)
        ledger.release(decision, "failed")
        return
    # The secret may hold the new token: leave it to the secret check, as after a lost answer. A
    # write since the claim is the write of this rotation (nothing else rotates the token meanwhile).
    before = decision.created_at.isoformat() if decision.created_at else None
    ledger.finish(
        decision,
        FAILED,
        STOPPED,
        error_kind="stopped",
        outcome="unknown",
        new_token_id=created[0],
        secret_before=before,
        orphans_left=created[1:],
    )
