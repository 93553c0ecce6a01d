"""The admins' answer to a request (`requests`): approve applies it as a new decision with
`approved_by`, and the request row becomes `approved`; deny records the refusal and the requester
may ask again. Apart from `requests` because approving re-enters the actions that ask (scopes,
extension)."""

from __future__ import annotations

from sqlmodel import Session

from bot.models import Decision
from bot.services.decisions import extension, ledger, requests, scopes, wording
from bot.services.decisions.model import (
    ADMIN,
    APPLIED,
    APPROVABLE,
    APPROVE,
    APPROVED,
    DENIED,
    DENY,
    EXTEND,
    NOT_MINE,
    REQUESTED,
    Actor,
    GatewayFactory,
    Outcome,
    Subject,
)


def approve(
    *, session: Session, gateway_for: GatewayFactory, actor: Actor, decision_id: int, dry_run: bool = False
) -> Outcome:
    """Admins: apply a request (scopes, restore, a longer extension). The application is a new
    decision with `approved_by`; the request becomes `approved` once it is applied."""
    found = _open_request(session, actor, APPROVE, decision_id)
    if isinstance(found, Outcome):
        return found
    subject, request = found
    if request.action == NOT_MINE:
        message = wording.PICK_OWNER
        return ledger.refuse_subject(
            session, subject, APPROVE, {"request_id": request.id}, "invalid", message
        )
    parameters = {**request.parameters, "request_id": request.id, "requested_by": request.actor_slack_id}
    if request.action == EXTEND:
        outcome = extension.grant_exemption(session, subject, parameters, approved_by=actor.slack_id)
    else:
        chosen = list(request.parameters.get("scopes") or ())
        outcome = scopes.change_scopes(
            session,
            gateway_for,
            subject,
            request.action,
            chosen,
            parameters,
            dry_run,
            approved_by=actor.slack_id,
        )
    if outcome.status == APPLIED:
        requests.resolve(request, APPROVED, actor)
    return outcome


def deny(*, session: Session, actor: Actor, decision_id: int, reason: str = "") -> Outcome:
    """Admins: turn a request down; nothing changes, the requester may ask again."""
    found = _open_request(session, actor, DENY, decision_id)
    if isinstance(found, Outcome):
        return found
    subject, request = found
    parameters = {
        **request.parameters,
        "request_id": request.id,
        "requested_by": request.actor_slack_id,
        "deny_reason": reason,
    }
    decision = ledger.start(session, subject, request.action, parameters)
    ledger.finish(decision, DENIED)
    requests.resolve(request, DENIED, actor)
    return ledger.outcome(decision, wording.denied(request.actor_slack_id, subject.token))


def _open_request(
    session: Session, actor: Actor, attempt: str, decision_id: int
) -> tuple[Subject, Decision] | Outcome:
    """The request, locked after its token (always token first: no lock-order deadlock)."""
    request = session.get(Decision, decision_id)
    token_pk = request.token_pk if request is not None else None
    parameters = {"request_id": decision_id}
    if not actor.is_admin:
        message = wording.ADMINS_DECIDE_REQUESTS
        role = ledger.role_of(actor, None)
        return ledger.refuse(session, actor, role, attempt, token_pk, parameters, "not_admin", message)
    if request is None or token_pk is None or request.action not in APPROVABLE | {NOT_MINE}:
        message = wording.NO_SUCH_REQUEST
        return ledger.refuse(session, actor, ADMIN, attempt, token_pk, parameters, "invalid", message)
    subject = ledger.authorize(session, actor, attempt, token_pk, parameters, live=attempt == APPROVE)
    if isinstance(subject, Outcome):
        return subject
    request = ledger.lock(session, Decision, decision_id)
    if request.status != REQUESTED:
        decided_by = request.parameters.get("decided_by") or request.approved_by
        message = wording.decided_already(request.status, decided_by or "?")
        return ledger.duplicate(session, subject, attempt, parameters, request, message)
    return subject, request
