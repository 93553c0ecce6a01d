"""The ledger of decisions: who may decide about a token, the claims that make decisions on one
token run one at a time, the idempotency keys that let a thing happen once, and the `decision`
rows every attempt writes (refused ones included).

Claim, call, record. A decision that calls Databricks takes three steps, and holds no transaction
or database connection while Databricks works:

1. Claim, in a short transaction: lock the token row (`SELECT ... FOR UPDATE` on PostgreSQL; on
   SQLite, which has no row locks, a no-op UPDATE takes the database's write lock for the few
   milliseconds the claim takes), check the rules, and insert the decision `in_progress`, holding
   its idempotency key (the `*_key` functions below) if it has one. `call_outside` commits it.
   Behind the lock a claim sees every claim committed before it: a double click, a Slack retry,
   20 parallel clicks or two admins at once give one claim; the others are `refused` as
   duplicates naming who holds it, and no other decision about the token may start while one is
   `in_progress` (`claim_once`, `claim`).
2. Call Databricks, with nothing held.
3. Record the outcome in a second short transaction (the caller's commit): `applied`, or
   `failed`, which renames the key (`<key>:failed:<id>`) so Retry can claim again. An answer that
   was lost is checked first (`lost_answers`).

A process that dies between 1 and 3 leaves its claim `in_progress`: `claims.settle` finds claims
older than `claims.CLAIM_TIMEOUT`, reads Databricks to learn what happened, and records it; it
never repeats the call. Decisions that call nothing (accept, snooze, an exemption, a request)
claim and record in one short transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot import clock
from bot.databricks.records import GatewayError
from bot.models import Decision, Principal, Token
from bot.services.decisions import wording
from bot.services.decisions.model import (
    ADMIN,
    APPLIED,
    FAILED,
    IN_PROGRESS,
    OTHER,
    OWNER,
    REFUSED,
    STALE_REFERENCE,
    TOKENBOT,
    TOKENBOT_ROLE,
    Actor,
    DeadlineRef,
    Outcome,
    Subject,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", Token, Decision)


# =============================================================================================
# idempotency keys: one claim per thing that may happen once


def revoke_key(token_pk: int, dry_run: bool) -> str:
    return f"revoke:{token_pk}" + (":dry-run" if dry_run else "")


def rotate_key(token_pk: int, dry_run: bool) -> str:
    return f"rotate:{token_pk}" + (":dry-run" if dry_run else "")


def accept_key(token_pk: int, deadline: DeadlineRef) -> str:
    return f"accept:{token_pk}:{deadline.kind}:{deadline.due_date.isoformat()}"


def extend_key(token_pk: int, kind: str, due_date: str) -> str:
    return f"extend:{token_pk}:{kind}:{due_date}"


def snooze_key(token_pk: int, deadline: DeadlineRef, day: str) -> str:
    return f"snooze:{token_pk}:{deadline.kind}:{deadline.due_date.isoformat()}:{day}"


def request_key(token_pk: int, action: str) -> str:
    """An open request to the admins about this token and action."""
    return f"request:{token_pk}:{action}"


# =============================================================================================
# authorization


def authorize(
    session: Session,
    actor: Actor,
    action: str,
    token_pk: int,
    parameters: dict[str, Any],
    *,
    live: bool = False,
    admin_only: bool = False,
    deadline: DeadlineRef | None = None,
) -> Subject | Outcome:
    """The locked token and the actor's role, or a recorded refusal (a stale `deadline` included)."""
    token = lock(session, Token, token_pk)
    if token is None:
        message = wording.NOT_KNOWN
        parameters = {**parameters, "token_pk": token_pk}
        return refuse(
            session, actor, role_of(actor, None), action, None, parameters, "unknown_token", message
        )
    owner = owner_of(session, token)
    role = role_of(actor, owner)
    if admin_only and role not in (ADMIN, TOKENBOT_ROLE):
        return refuse(session, actor, role, action, token.id, parameters, "not_admin", wording.ADMINS_ONLY)
    if role == OTHER:
        message = wording.OWNER_OR_ADMIN_ONLY
        return refuse(session, actor, role, action, token.id, parameters, "not_owner", message)
    subject = Subject(token=token, owner=owner, actor=actor, role=role)
    if live and token.gone_at is not None:
        message = wording.nothing_to_do(token)
        return refuse_subject(session, subject, action, parameters, "token_gone", message)
    if deadline is not None and deadline.stale:
        return stale(session, subject, action, parameters, deadline)
    return subject


def stale(
    session: Session, subject: Subject, action: str, parameters: dict[str, Any], deadline: DeadlineRef
) -> Outcome:
    """Refused: the deadline referred to is not one tokenbot computes for the token now."""
    message = wording.stale_reference(subject.token, deadline)
    return refuse_subject(session, subject, action, parameters, STALE_REFERENCE, message)


def may_decide(*, session: Session, actor: Actor, token_pk: int) -> bool:
    """Read-only: whether the actor is the token's owner or an admin (to open a modal or not;
    the decision itself checks again, under the lock)."""
    token = session.get(Token, token_pk)
    return token is not None and role_of(actor, owner_of(session, token)) != OTHER


def owner_of(session: Session, token: Token) -> Principal | None:
    if not token.owner_id:
        return None
    return session.execute(
        select(Principal).where(
            Principal.workspace == token.workspace, Principal.principal_id == token.owner_id
        )
    ).scalar_one_or_none()


def role_of(actor: Actor, owner: Principal | None) -> str:
    if actor == TOKENBOT:
        return TOKENBOT_ROLE
    if actor.is_admin:
        return ADMIN
    if owner is not None and actor.slack_id in {owner.slack_user_id, owner.owner_slack_id} - {None}:
        return OWNER
    return OTHER


# =============================================================================================
# locks and claims


def lock(session: Session, model: type[M], pk: int) -> M | None:
    """The row, fresh, locked until the caller's transaction ends (a claim's: a few milliseconds).

    PostgreSQL locks the row (SELECT ... FOR UPDATE). SQLite has no row locks: a no-op UPDATE takes
    its database write lock instead, which also opens the transaction before any SAVEPOINT (pysqlite
    opens one only before a write, and a SAVEPOINT outside one would commit on release)."""
    query = select(model).where(model.id == pk).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "sqlite":
        no_op = update(model).where(model.id == pk).values(id=model.id)
        session.execute(no_op.execution_options(synchronize_session=False))
    else:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def holder(session: Session, key: str) -> Decision | None:
    """The decision holding an idempotency key, if any."""
    query = select(Decision).where(Decision.idempotency_key == key).execution_options(populate_existing=True)
    return session.execute(query).scalar_one_or_none()


def release(decision: Decision, why: str) -> None:
    """Free the key for a later attempt, keeping a trace of what held it."""
    if decision.idempotency_key:
        decision.idempotency_key = f"{decision.idempotency_key}:{why}:{decision.id}"[:200]
        decision.updated_at = clock.now()


def refuse_repeat(
    session: Session,
    subject: Subject,
    action: str,
    parameters: dict[str, Any],
    key: str,
    repeated: Callable[[Decision], str],
) -> Outcome | None:
    """A refused duplicate when a decision holds `key` already (`repeated` says what it did); None
    when nobody does."""
    earlier = holder(session, key)
    if earlier is None:
        return None
    under_way = earlier.status == IN_PROGRESS
    message = wording.in_progress(subject.token, earlier) if under_way else repeated(earlier)
    return duplicate(session, subject, action, parameters, earlier, message)


def in_progress_on(session: Session, token_pk: int) -> Decision | None:
    """The decision about this token whose Databricks call is under way, if any."""
    query = (
        select(Decision)
        .where(Decision.token_pk == token_pk, Decision.status == IN_PROGRESS)
        .order_by(Decision.id)
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return session.execute(query).scalars().first()


def _refuse_busy(
    session: Session, subject: Subject, action: str, parameters: dict[str, Any]
) -> Outcome | None:
    """Refused while another decision about the token is under way (one at a time per token)."""
    busy = in_progress_on(session, subject.token.id)
    if busy is None:
        return None
    message = wording.in_progress(subject.token, busy)
    return duplicate(session, subject, action, parameters, busy, message)


def claim(
    session: Session,
    subject: Subject,
    action: str,
    parameters: dict[str, Any],
    approved_by: str | None = None,
) -> Decision | Outcome:
    """The decision, `in_progress`, for a call that needs no key (the token's scopes show what
    was set); or the refusal while another decision about the token is under way."""
    refused = _refuse_busy(session, subject, action, parameters)
    if refused is not None:
        return refused
    return start(session, subject, action, parameters, approved_by)


def claim_once(
    session: Session,
    subject: Subject,
    action: str,
    parameters: dict[str, Any],
    key: str,
    repeated: Callable[[Decision], str],
    *,
    recorded: dict[str, Any] | None = None,
    approved_by: str | None = None,
    status: str = IN_PROGRESS,
) -> Decision | Outcome:
    """The decision now holding `key` (recording `recorded`, else `parameters`), inserted with
    `status` before anything is called; or the refusal: a duplicate of the decision that holds the
    key already, or of the one under way on the token, or busy when another transaction claimed it
    meanwhile."""
    refused = refuse_repeat(session, subject, action, parameters, key, repeated)
    if refused is None:
        refused = _refuse_busy(session, subject, action, parameters)
    if refused is not None:
        return refused
    decision = _claim(
        session, subject, action, parameters if recorded is None else recorded, key, approved_by, status
    )
    if decision is None:
        return refuse_subject(session, subject, action, parameters, "duplicate", wording.busy(subject.token))
    return decision


def _claim(
    session: Session,
    subject: Subject,
    action: str,
    parameters: dict[str, Any],
    key: str,
    approved_by: str | None,
    status: str,
) -> Decision | None:
    """Insert the decision holding `key`; None when another transaction holds the key (behind the
    token lock, only a caller that skipped the lock)."""
    try:
        with session.begin_nested():  # the IntegrityError must not break the caller's transaction
            return start(session, subject, action, parameters, approved_by, key=key, status=status)
    except IntegrityError:
        return None


# =============================================================================================
# records


def start(
    session: Session,
    subject: Subject,
    action: str,
    parameters: dict[str, Any],
    approved_by: str | None = None,
    *,
    key: str | None = None,
    status: str = IN_PROGRESS,
) -> Decision:
    """Insert the decision (`in_progress` until finished; a request to the admins `requested`)
    before anything is called, holding the idempotency `key` if one is given."""
    decision = _new_decision(subject.actor, subject.role, action, subject.token.id, parameters, status)
    decision.idempotency_key, decision.approved_by = key, approved_by
    session.add(decision)
    session.flush()
    _log(decision)
    return decision


def _new_decision(
    actor: Actor, role: str, action: str, token_pk: int | None, parameters: dict[str, Any], status: str
) -> Decision:
    now = clock.now()
    return Decision(
        token_pk=token_pk,
        action=action,
        actor_slack_id=actor.slack_id,
        actor_role=role,
        parameters=dict(parameters),
        status=status,
        created_at=now,
        updated_at=now,
    )


def finish(decision: Decision, status: str, error: str | None = None, **parameters: Any) -> None:
    decision.status = status
    decision.error = error[:2000] if error else None
    decision.updated_at = clock.now()
    if parameters:
        merge(decision, **parameters)
    _log(decision)


def merge(decision: Decision, **parameters: Any) -> None:
    # A new dict: the JSON column does not see changes made inside the old one.
    decision.parameters = {**decision.parameters, **parameters}


def databricks(session: Session, decision: Decision, dry_run: bool, call: Callable[[], T]) -> T | None:
    """The one place dry run is honoured: every mutating Databricks call goes through here, after
    its claim is committed (`call_outside`)."""
    if dry_run:
        merge(decision, dry_run=True)
        return None
    assert decision.token_pk is not None  # a claim is about a token
    return call_outside(session, decision.token_pk, call)


def call_outside(session: Session, token_pk: int, call: Callable[[], T]) -> T:
    """Commit what the session holds (the claim), then call with no transaction or connection
    held. `call` must not read the database (the session keeps its objects loaded:
    `expire_on_commit=False`). Then the transaction that records the outcome begins by locking the
    token, as every claim does: with the same order everywhere (the token, then decision rows),
    recording cannot deadlock with a claim about the same token. After an answer that was lost, the
    caller checks Databricks first and then takes the lock itself (`lock_for_record`)."""
    if session.in_nested_transaction():
        raise RuntimeError("a decision's claim is committed before Databricks is called: not in a SAVEPOINT")
    session.commit()
    try:
        answer = call()
    except GatewayError as error:
        if not error.outcome_unknown:
            lock_for_record(session, token_pk)
        raise
    lock_for_record(session, token_pk)
    return answer


def lock_for_record(session: Session, token_pk: int) -> None:
    """Open the transaction that records an outcome on the token's lock (see `call_outside`)."""
    lock(session, Token, token_pk)


def applied(decision: Decision, message: str) -> Outcome:
    finish(decision, APPLIED)
    return outcome(decision, message)


def failed(decision: Decision, error: GatewayError, what: str, tail: str = "") -> Outcome:
    finish(decision, FAILED, error=error.message, error_kind=error.kind)
    release(decision, "failed")  # Retry may claim again
    return outcome(decision, wording.failed(what, error.message, tail))


def refused(decision: Decision, why: str, message: str, **parameters: Any) -> Outcome:
    """A claim whose call showed it must not go ahead (the live token is not what was shown)."""
    finish(decision, REFUSED, refused=why, **parameters)
    return outcome(decision, message)


def refuse(
    session: Session,
    actor: Actor,
    role: str,
    action: str,
    token_pk: int | None,
    parameters: dict[str, Any],
    why: str,
    message: str,
    duplicate_of: int | None = None,
) -> Outcome:
    extra: dict[str, Any] = {"refused": why}
    if duplicate_of is not None:
        extra["duplicate_of"] = duplicate_of
    decision = _new_decision(actor, role, action, token_pk, {**parameters, **extra}, REFUSED)
    session.add(decision)
    session.flush()
    _log(decision)
    return outcome(decision, message, duplicate_of)


def refuse_subject(
    session: Session,
    subject: Subject,
    action: str,
    parameters: dict[str, Any],
    why: str,
    message: str,
    earlier: Decision | None = None,  # the decision this one repeats, if any
) -> Outcome:
    actor, role, token_pk = subject.actor, subject.role, subject.token.id
    earlier_id = earlier.id if earlier is not None else None
    return refuse(session, actor, role, action, token_pk, parameters, why, message, earlier_id)


def duplicate(
    session: Session,
    subject: Subject,
    action: str,
    parameters: dict[str, Any],
    earlier: Decision,
    message: str,
) -> Outcome:
    return refuse_subject(session, subject, action, parameters, "duplicate", message, earlier)


def outcome(decision: Decision, message: str, duplicate_of: int | None = None) -> Outcome:
    return Outcome(
        status=decision.status,
        message=message,
        action=decision.action,
        decision_id=decision.id,
        token_pk=decision.token_pk,
        actor_slack_id=decision.actor_slack_id,
        decided_at=decision.updated_at,
        parameters=dict(decision.parameters),
        error=decision.error,
        duplicate_of=duplicate_of,
    )


def _log(decision: Decision) -> None:
    logger.info(
        "decision %s: %s %s on token %s by %s (%s)",
        decision.id,
        decision.action,
        decision.status,
        decision.token_pk,
        decision.actor_slack_id,
        decision.actor_role,
    )
