"""What earlier decisions say: Retry of a failed one, and, for the reminders, whether a deadline
is settled (`stops_reminders`) or snoozed (`snoozed_until`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session

from bot.domain.policy import Policy
from bot.models import Decision
from bot.services.decisions import actions, extension, ledger, scopes, wording
from bot.services.decisions.model import (
    APPLIED,
    CONFIRM_SCOPES,
    EXTEND,
    FAILED,
    RESTORE,
    REVOKE,
    ROTATE,
    SETTLING_ACTIONS,
    SNOOZE,
    Actor,
    DeadlineRef,
    GatewayFactory,
    Outcome,
    parse_time,
)

if TYPE_CHECKING:
    from bot.config import SecretBinding


def retry(
    *,
    session: Session,
    gateway_for: GatewayFactory,
    actor: Actor,
    decision_id: int,
    policy: Policy,
    secret_bindings: Sequence[SecretBinding] = (),
    dry_run: bool = False,
) -> Outcome:
    """Try a failed decision again, with the same parameters (the Retry button). It is a new
    attempt by `actor`, checked and recorded like any other."""
    failed = session.get(Decision, decision_id)
    if failed is None or failed.status != FAILED or failed.token_pk is None:
        return _refuse_retry(session, actor, None, decision_id, wording.NOTHING_TO_RETRY)
    parameters = failed.parameters or {}
    deadline = _deadline_from(parameters)
    common = {"session": session, "actor": actor, "token_pk": failed.token_pk}
    if failed.action == REVOKE:
        return actions.revoke(
            **common,
            gateway_for=gateway_for,
            reason=parameters.get("reason", ""),
            dry_run=dry_run,
            deadline=deadline,
        )
    if failed.action == CONFIRM_SCOPES:
        return scopes.confirm_scopes(
            **common,
            gateway_for=gateway_for,
            scopes=parameters.get("scopes", ()),
            dry_run=dry_run,
            deadline=deadline,
        )
    if failed.action == RESTORE:
        return scopes.restore_scopes(
            **common, gateway_for=gateway_for, scopes=parameters.get("scopes", ()), dry_run=dry_run
        )
    if failed.action in (EXTEND, ROTATE) and deadline is not None:
        return extension.extend(
            **common,
            gateway_for=gateway_for,
            deadline=deadline,
            days=int(parameters.get("days", 1)),
            reason=parameters.get("reason", ""),
            policy=policy,
            secret_bindings=secret_bindings,
            dry_run=dry_run,
        )
    return _refuse_retry(session, actor, failed.token_pk, decision_id, wording.NOT_RETRYABLE)


def _refuse_retry(
    session: Session, actor: Actor, token_pk: int | None, decision_id: int, message: str
) -> Outcome:
    role = ledger.role_of(actor, None)
    return ledger.refuse(
        session, actor, role, "retry", token_pk, {"decision_id": decision_id}, "invalid", message
    )


def _deadline_from(parameters: Mapping[str, Any]) -> DeadlineRef | None:
    if not parameters.get("deadline_kind") or not parameters.get("due_at"):
        return None
    try:
        return DeadlineRef(
            kind=str(parameters["deadline_kind"]), due_at=parse_time(str(parameters["due_at"]))
        )
    except ValueError:
        return None


def stops_reminders(
    *, session: Session, token_pk: int, deadline_kind: str, due_date: date, now: datetime
) -> bool:
    """True when an applied decision (accept, confirm, extend, rotate, revoke, restore) made by
    `now` settled this deadline. Dry-run decisions do not count: nothing really happened."""
    rows = session.execute(
        select(Decision.parameters).where(
            Decision.token_pk == token_pk,
            Decision.status == APPLIED,
            Decision.action.in_(SETTLING_ACTIONS),
            Decision.created_at <= now,
        )
    ).scalars()
    return any(
        _about(parameters, deadline_kind, due_date) and not parameters.get("dry_run") for parameters in rows
    )


def snoozed_until(*, session: Session, token_pk: int, deadline_kind: str, due_date: date) -> datetime | None:
    """The end of the latest snooze of this deadline, if any (compare it with now)."""
    rows = session.execute(
        select(Decision.parameters).where(
            Decision.token_pk == token_pk, Decision.status == APPLIED, Decision.action == SNOOZE
        )
    ).scalars()
    ends = [parse_time(p["until"]) for p in rows if _about(p, deadline_kind, due_date) and p.get("until")]
    return max(ends, default=None)


def _about(parameters: Mapping[str, Any], deadline_kind: str, due_date: date) -> bool:
    return (
        parameters.get("deadline_kind") == str(deadline_kind)
        and parameters.get("due_date") == due_date.isoformat()
    )
