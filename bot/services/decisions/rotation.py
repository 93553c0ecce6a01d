"""Rotation: Extend on the expiry of a service principal's token bound to a secret makes a new
token, writes it to the secret (`rotation_steps`), and records what is true; `complete_rotations`
revokes the old token once the grace period has passed.

A step whose answer was lost is checked before the outcome is told (`rotation_steps`). A secret
write that nobody could check leaves the rotation `failed` with parameters["outcome"] "unknown"
and its key held: the new token is kept (the secret may hold it), the old one is not revoked, and
nothing else rotates this token until Retry, or the scheduled `complete_rotations`, checks the
secret again (`_settle`, `_settle_rotations`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session

from bot import clock
from bot.databricks.records import WorkspaceGateway
from bot.domain.policy import Policy
from bot.models import Decision, Token
from bot.services.decisions import actions, claims, ledger, lost_answers, rotation_steps, wording
from bot.services.decisions.model import (
    APPLIED,
    FAILED,
    ROTATE,
    TOKENBOT,
    GatewayFactory,
    Outcome,
    Subject,
    parse_time,
)

if TYPE_CHECKING:
    from bot.config import SecretBinding

logger = logging.getLogger(__name__)


def rotate(
    session: Session,
    gateway_for: GatewayFactory,
    subject: Subject,
    parameters: dict[str, Any],
    binding: SecretBinding,
    policy: Policy,
    dry_run: bool,
) -> Outcome:
    """Rotate the subject's token into `binding`'s secret (its owner is a bound service principal)."""
    token, owner = subject.token, subject.owner
    assert owner is not None and owner.application_id  # the binding matched it
    parameters = {
        **parameters,
        "application_id": owner.application_id,
        "secret_scope": binding.scope,
        "secret_key": binding.key,
        "lifetime_days": policy.rotation_lifetime_days,
        "grace_hours": policy.rotation_grace_hours,
    }
    key, where, note = ledger.rotate_key(token.id, dry_run), f"{binding.scope}/{binding.key}", ""
    earlier = ledger.holder(session, key)
    if earlier is not None and _unsettled(earlier):
        settled = _settle(session, gateway_for(token.workspace), subject, parameters, earlier, where, policy)
        if settled is not None:
            return settled
        note = wording.SETTLED_NOT_WRITTEN  # its key is free again: rotate anew
    claimed = ledger.claim_once(
        session,
        subject,
        ROTATE,
        parameters,
        key,
        lambda earlier: wording.rotated_already(token, earlier, where),
    )
    if isinstance(claimed, Outcome):
        return claimed
    decision = claimed
    sweep_ids, keep = _earlier_rotations(session, token.id)
    gateway, decision_id = gateway_for(token.workspace), decision.id
    application_id = owner.application_id or ""
    comment, scopes = token.comment or "", list(token.scopes or ())
    rotated = ledger.databricks(
        session,
        decision,
        dry_run,
        lambda: rotation_steps.create_and_store(
            gateway,
            decision_id=decision_id,
            application_id=application_id,
            lifetime_seconds=policy.rotation_lifetime_days * 86400,
            comment=comment,
            scopes=scopes,
            scope=binding.scope,
            key=binding.key,
            sweep_ids={*sweep_ids, decision_id},
            keep=keep,
        ),
    )
    if rotated is None:
        return ledger.applied(decision, wording.rotate_dry_run(owner.application_id, where))
    return _rotation_outcome(decision, rotated, token, where, policy, note)


def _earlier_rotations(session: Session, token_pk: int) -> tuple[set[int], set[str]]:
    """The ids of this token's earlier rotations (their marked tokens are swept) and the new
    tokens of those that stored theirs (kept)."""
    rows = session.execute(select(Decision).where(Decision.token_pk == token_pk, Decision.action == ROTATE))
    ids, keep = set(), set()
    for row in rows.scalars():
        ids.add(row.id)
        if row.status == APPLIED and row.parameters.get("new_token_id"):
            keep.add(row.parameters["new_token_id"])
        elif _unsettled(row):
            keep.add(row.parameters["new_token_id"])
    return ids, keep


def _rotation_outcome(
    decision: Decision,
    rotated: rotation_steps.Rotated,
    token: Token,
    where: str,
    policy: Policy,
    note: str,
) -> Outcome:
    sweep = rotated.sweep
    ledger.merge(
        decision,
        new_token_id=rotated.new_token_id,
        answer_lost=rotated.answer_lost,
        orphans_checked=sweep.checked,
        orphans_revoked=sweep.revoked,
        orphans_left=sweep.left,
    )
    if rotated.stored:
        revoke_after = clock.now() + timedelta(hours=policy.rotation_grace_hours)
        ledger.finish(decision, APPLIED, revoke_old_after=revoke_after.isoformat())
        message = wording.rotated(token, rotated, where, policy.rotation_lifetime_days, revoke_after)
        return ledger.outcome(decision, note + message)
    error = rotated.error
    assert error is not None  # not stored: a step failed
    if rotated.stored is None:  # a new token that may be in the secret: keep it, hold the key
        before = rotated.secret_before.isoformat() if rotated.secret_before else None
        ledger.finish(
            decision, FAILED, error.message, error_kind=error.kind, outcome="unknown", secret_before=before
        )
        return ledger.outcome(decision, note + wording.rotation_unknown(token, rotated, where, error.message))
    ledger.merge(decision, new_token_revoked=rotated.new_token_revoked)
    if rotated.failed_step == rotation_steps.READ_SECRET:
        what = note + wording.could_not_read_secret(token, where)
        return ledger.failed(decision, error, what)
    if rotated.failed_step == rotation_steps.CREATE:
        what = note + wording.could_not_create(token)
        return ledger.failed(decision, error, what, tail=wording.create_failed(rotated))
    what = note + wording.could_not_write_secret(where)
    return ledger.failed(decision, error, what, tail=wording.secret_not_written(token, rotated))


def _unsettled(decision: Decision) -> bool:
    return (
        decision.action == ROTATE
        and decision.status == FAILED
        and decision.parameters.get("outcome") == "unknown"
        and bool(decision.parameters.get("new_token_id"))
    )


def _settle(
    session: Session,
    gateway: WorkspaceGateway,
    subject: Subject,
    parameters: dict[str, Any],
    earlier: Decision,
    where: str,
    policy: Policy,
) -> Outcome | None:
    """Before rotating again: check the secret of a rotation whose write nobody could check. An
    outcome (a refused duplicate saying what was found) when it was written or is still unknown;
    None when it was not (its token revoked, its key released: the caller rotates again)."""
    written = _recheck_rotation(gateway, earlier, clock.now(), policy.rotation_grace_hours)
    if written is None:
        message = wording.rotation_unchecked(subject.token, earlier, where)
        return ledger.duplicate(session, subject, ROTATE, parameters, earlier, message)
    if written:
        message = wording.rotation_checked(subject.token, earlier, where)
        return ledger.duplicate(session, subject, ROTATE, parameters, earlier, message)
    return None


def _recheck_rotation(
    gateway: WorkspaceGateway, rotation: Decision, now: datetime, grace_hours: int
) -> bool | None:
    """Read the secret of an unsettled rotation again and record what it shows: written (the
    rotation is applied; the old token goes `grace_hours` from now), not written (failed: its new
    token is revoked and its key released), or still unknown (None: nothing changes)."""
    found = rotation.parameters
    before = parse_time(found["secret_before"]) if found.get("secret_before") else None
    written = lost_answers.secret_written(gateway, found["secret_scope"], found["secret_key"], before)
    if written:
        revoke_after = now + timedelta(hours=grace_hours)
        ledger.finish(rotation, APPLIED, outcome="verified", revoke_old_after=revoke_after.isoformat())
    elif written is False:
        revoked = lost_answers.revoke(gateway, found["new_token_id"])
        ledger.finish(rotation, FAILED, rotation.error, outcome="not_stored", new_token_revoked=revoked)
        ledger.release(rotation, "failed")
    return written


def _settle_rotations(session: Session, gateway_for: GatewayFactory, now: datetime) -> None:
    """The scheduled side of _settle: every unsettled rotation is checked again, each in its own
    savepoint, under its token's lock (so it cannot race a click on Retry)."""
    query = select(Decision).where(Decision.action == ROTATE, Decision.status == FAILED)
    unsettled = [(row.id, row.token_pk) for row in session.execute(query).scalars() if _unsettled(row)]
    for decision_id, token_pk in unsettled:
        try:
            with session.begin_nested():
                token = ledger.lock(session, Token, token_pk)
                rotation = ledger.lock(session, Decision, decision_id)
                if token is None or rotation is None or not _unsettled(rotation):
                    continue
                grace = int(rotation.parameters.get("grace_hours", 24))
                written = _recheck_rotation(gateway_for(token.workspace), rotation, now, grace)
                logger.info("rotation %s: secret write checked again: %s", decision_id, written)
        except Exception:
            logger.exception("rotation %s: checking its secret again failed", decision_id)


def complete_rotations(
    *, session: Session, gateway_for: GatewayFactory, now: datetime, dry_run: bool = False
) -> list[Outcome]:
    """Revoke the old token of every rotation whose grace period has passed (actor `tokenbot`),
    after checking again the secret of rotations whose write nobody could check (_settle_rotations).

    A scheduled job; each token is its own transactions (claim, call, record), so one failure
    cannot stop the others. Run again, it does nothing more: a revoked token is gone, and a failed
    one is tried again. It also settles the decisions a stopped process left in progress
    (`claims.settle`) first."""
    if not dry_run:
        claims.settle(session=session, gateway_for=gateway_for, now=now)
        _settle_rotations(session, gateway_for, now)
        session.commit()
    outcomes = []
    for rotation_id, token_pk, new_token_id in rotations_due(session, now):
        if dry_run and ledger.holder(session, ledger.revoke_key(token_pk, True)) is not None:
            continue  # already revoked in dry run; the token stays listed
        try:
            outcomes.append(
                actions.revoke(
                    session=session,
                    gateway_for=gateway_for,
                    actor=TOKENBOT,
                    token_pk=token_pk,
                    reason=f"rotated: replaced by {new_token_id}",
                    dry_run=dry_run,
                )
            )
            session.commit()
        except Exception:
            session.rollback()
            logger.exception("rotation %s: revoking the old token failed", rotation_id)
    return outcomes


def rotations_due(session: Session, now: datetime) -> list[tuple[int, int, str | None]]:
    """(rotation id, token, new token id) of the rotations whose old token is due to go."""
    rows = session.execute(
        select(Decision)
        .join(Token, Token.id == Decision.token_pk)
        .where(Decision.action == ROTATE, Decision.status == APPLIED, Token.gone_at.is_(None))
        .order_by(Decision.id)
    ).scalars()
    return [
        (row.id, row.token_pk, row.parameters.get("new_token_id"))
        for row in rows
        if row.parameters.get("revoke_old_after") and parse_time(row.parameters["revoke_old_after"]) <= now
    ]
