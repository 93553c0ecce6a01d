"""The owner's simple buttons: revoke a token, accept or snooze a deadline, say a token is not
mine; and the admins' answer to that, assigning an owner."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from bot import clock
from bot.databricks.records import GatewayError, WorkspaceGateway
from bot.domain.deadlines import DeadlineKind
from bot.models import Decision, Principal, Token
from bot.services.decisions import ledger, lost_answers, requests, wording
from bot.services.decisions.model import (
    ACCEPT,
    APPLIED,
    APPROVED,
    ASSIGN_OWNER,
    NOT_MINE,
    REVOKE,
    SLACK_USER_ID,
    SNOOZE,
    SNOOZE_FOR,
    Actor,
    DeadlineRef,
    GatewayFactory,
    Outcome,
    deadline_parameters,
)

# =============================================================================================
# revoke


def revoke(
    *,
    session: Session,
    gateway_for: GatewayFactory,
    actor: Actor,
    token_pk: int,
    reason: str = "",
    dry_run: bool = False,
    deadline: DeadlineRef | None = None,
) -> Outcome:
    """DELETE the token. Already gone (in the database or at Databricks) is `applied` with
    parameters["already_gone"]; a second revoke of the same token is a refused duplicate."""
    parameters = {"reason": reason, **deadline_parameters(deadline)}
    subject = ledger.authorize(session, actor, REVOKE, token_pk, parameters)
    if isinstance(subject, Outcome):
        return subject
    token = subject.token
    key = ledger.revoke_key(token.id, dry_run)
    earlier = ledger.holder(session, key)
    if earlier is not None and earlier.status == APPLIED and token.gone_at is None and not dry_run:
        ledger.release(earlier, "relisted")  # Databricks lists it again since: revoke it for real
        earlier = None
    if earlier is None and deadline is not None and deadline.stale:
        # Checked after the key: a click that comes after the token was revoked (its deadline gone
        # with it) is told who revoked it, as a duplicate, not that its button is out of date.
        return ledger.stale(session, subject, REVOKE, parameters, deadline)
    recorded = {**parameters, "already_gone": True} if token.gone_at is not None else parameters
    claimed = ledger.claim_once(
        session,
        subject,
        REVOKE,
        parameters,
        key,
        lambda earlier: wording.revoked_already(token, earlier),
        recorded=recorded,
    )
    if isinstance(claimed, Outcome):
        return claimed
    decision = claimed
    if token.gone_at is not None:
        return ledger.applied(decision, wording.gone(token))
    gateway, token_id = gateway_for(token.workspace), token.token_id
    try:
        deleted = ledger.databricks(session, decision, dry_run, lambda: gateway.delete_token(token_id))
    except GatewayError as error:
        if not error.outcome_unknown:
            return ledger.failed(decision, error, wording.could_not_revoke(token))
        return _revoke_answer_lost(session, decision, error, gateway, token)
    if decision.parameters.get("dry_run"):
        return ledger.applied(decision, wording.revoke_dry_run(token))
    return _record_revoked(decision, token, deleted)


def _record_revoked(decision: Decision, token: Token, deleted: bool | None) -> Outcome:
    """The DELETE answered: applied (False: Databricks had no such token any more)."""
    mark_gone(token)
    if not deleted:
        ledger.finish(decision, APPLIED, already_gone=True)
        # A 404 says the token is gone, not who revoked it: the SDK retries a DELETE whose answer
        # was lost, and the retry finds the token the first attempt revoked.
        return ledger.outcome(decision, wording.revoked_not_found(token))
    return ledger.applied(decision, wording.revoked(token))


def _revoke_answer_lost(
    session: Session, decision: Decision, error: GatewayError, gateway: WorkspaceGateway, token: Token
) -> Outcome:
    """The DELETE got no answer: read the token back (404 means the revoke was applied), then
    record it."""
    verified = lost_answers.gone(gateway, token.token_id)
    ledger.lock_for_record(session, token.id)
    ledger.merge(decision, answer_lost=True, verified=verified is not None)
    if verified:
        mark_gone(token)
        return ledger.applied(decision, wording.revoked_checked(token))
    tail = wording.revoke_unchecked(verified)
    return ledger.failed(decision, error, wording.could_not_revoke(token), tail=tail)


def mark_gone(token: Token) -> None:
    token.gone_at = clock.now()
    token.gone_reason = "revoked"


# =============================================================================================
# accept, snooze


def accept(*, session: Session, actor: Actor, token_pk: int, deadline: DeadlineRef) -> Outcome:
    """The owner agrees to what will happen (usually the inferred scopes); reminders stop."""
    parameters = deadline_parameters(deadline)
    subject = ledger.authorize(session, actor, ACCEPT, token_pk, parameters, live=True, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    token = subject.token
    if deadline.kind == DeadlineKind.AUTOSCOPE_ENFORCEMENT:
        parameters["inferred_scopes"] = list(token.inferred_scopes or ())
    claimed = ledger.claim_once(
        session,
        subject,
        ACCEPT,
        parameters,
        ledger.accept_key(token.id, deadline),
        wording.accepted_already,
    )
    if isinstance(claimed, Outcome):
        return claimed
    return ledger.applied(claimed, wording.accepted(token, deadline))


def snooze(*, session: Session, actor: Actor, token_pk: int, deadline: DeadlineRef) -> Outcome:
    """The next reminder about this deadline comes tomorrow, or at the deadline if that is sooner."""
    now = clock.now()
    parameters = deadline_parameters(deadline)
    subject = ledger.authorize(session, actor, SNOOZE, token_pk, parameters, live=True, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    if deadline.due_at <= now:
        return ledger.refuse_subject(session, subject, SNOOZE, parameters, "invalid", wording.DEADLINE_PASSED)
    until = min(now + SNOOZE_FOR, deadline.due_at)
    parameters["until"] = until.isoformat()
    claimed = ledger.claim_once(
        session,
        subject,
        SNOOZE,
        parameters,
        ledger.snooze_key(subject.token.id, deadline, now.date().isoformat()),
        wording.snoozed_already,
    )
    if isinstance(claimed, Outcome):
        return claimed
    return ledger.applied(claimed, wording.snoozed(subject.token, until, tomorrow=until == now + SNOOZE_FOR))


# =============================================================================================
# not mine, owners


def not_mine(
    *, session: Session, actor: Actor, token_pk: int, note: str = "", deadline: DeadlineRef | None = None
) -> Outcome:
    """The owner says the token is not theirs: a request for the admins to pick its owner. The
    deadline the reminder was about, if any, is recorded: a denied request is not re-filed for it."""
    parameters = {"note": note, **deadline_parameters(deadline)}
    subject = ledger.authorize(session, actor, NOT_MINE, token_pk, parameters, live=True, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    return requests.ask(session, subject, NOT_MINE, parameters, wording.OWNER_WANTED)


def assign_owner(*, session: Session, actor: Actor, token_pk: int, owner_slack_id: str) -> Outcome:
    """Admins: make `owner_slack_id` the owner of the token's principal (every token of it in
    that workspace), and settle any open Not mine request about this token."""
    parameters: dict[str, Any] = {"owner_slack_id": owner_slack_id}
    subject = ledger.authorize(session, actor, ASSIGN_OWNER, token_pk, parameters, admin_only=True)
    if isinstance(subject, Outcome):
        return subject
    token = subject.token
    if not SLACK_USER_ID.match(owner_slack_id or ""):
        message = wording.not_a_user_id(owner_slack_id)
        return ledger.refuse_subject(session, subject, ASSIGN_OWNER, parameters, "invalid", message)
    principal = subject.owner or _new_principal(session, token)
    if principal is None:
        message = wording.no_owner(token)
        return ledger.refuse_subject(session, subject, ASSIGN_OWNER, parameters, "invalid", message)
    if principal.owner_slack_id == owner_slack_id:
        message = wording.owns_already(owner_slack_id, token)
        return ledger.refuse_subject(session, subject, ASSIGN_OWNER, parameters, "no_change", message)
    parameters.update(principal_id=principal.principal_id, previous_owner_slack_id=principal.owner_slack_id)
    principal.owner_slack_id = owner_slack_id
    decision = ledger.start(session, subject, ASSIGN_OWNER, parameters, approved_by=actor.slack_id)
    request = ledger.holder(session, ledger.request_key(token.id, NOT_MINE))
    if request is not None:
        requests.resolve(request, APPROVED, actor)
    others = _other_live_tokens(session, token, principal)
    return ledger.applied(decision, wording.assigned(token, principal, owner_slack_id, others))


def _new_principal(session: Session, token: Token) -> Principal | None:
    if not token.owner_id:
        return None
    principal = Principal(workspace=token.workspace, principal_id=token.owner_id)
    session.add(principal)
    return principal


def _other_live_tokens(session: Session, token: Token, principal: Principal) -> int:
    """How many other live tokens of the principal in the token's workspace the new owner gets."""
    others = session.execute(
        select(Token.id).where(
            Token.workspace == token.workspace,
            Token.owner_id == principal.principal_id,
            Token.gone_at.is_(None),
            Token.id != token.id,
        )
    ).all()
    return len(others)
