"""Requests to the admins: what an owner may not do alone (privileged scopes, a long extension,
Not mine) becomes a `requested` decision holding `request:<token>:<action>` until an admin
approves or denies it (`approvals`). A request an admin denied is not sent again for the same
deadline: asking again at once would only hold enforcement back again (DESIGN.md section 6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from bot.models import Decision
from bot.services.decisions import ledger, wording
from bot.services.decisions.model import APPROVED, DENIED, DENIED_BEFORE, REQUESTED, Actor, Outcome, Subject


def ask(session: Session, subject: Subject, action: str, parameters: dict[str, Any], why: str) -> Outcome:
    """Send the decision to the admins (`why` says what needs them); nothing changes yet."""
    key = ledger.request_key(subject.token.id, action)

    def waiting(earlier: Decision) -> str:
        return wording.request_waiting(subject.token, earlier)

    # An open request is a duplicate first; only a new one is checked against denied ones.
    refused = ledger.refuse_repeat(session, subject, action, parameters, key, waiting)
    if refused is not None:
        return refused
    denied = denied_before(session, subject, action, parameters)
    if denied is not None:
        message = wording.denied_before(subject.token, denied)
        return ledger.refuse_subject(session, subject, action, parameters, DENIED_BEFORE, message, denied)
    claimed = ledger.claim_once(session, subject, action, parameters, key, waiting, status=REQUESTED)
    if isinstance(claimed, Outcome):
        return claimed
    return ledger.outcome(claimed, wording.sent_to_admins(subject.token, why))


def denied_before(
    session: Session, subject: Subject, action: str, parameters: Mapping[str, Any]
) -> Decision | None:
    """The same person's request of this kind about this token, for this deadline (and for scopes,
    the same scopes), that an admin denied. A request without a deadline matches any deadline: it
    cannot be used to step around the rule."""
    rows = session.execute(
        select(Decision)
        .where(
            Decision.token_pk == subject.token.id,
            Decision.action == action,
            Decision.status == DENIED,
            Decision.actor_slack_id == subject.actor.slack_id,
            Decision.idempotency_key.is_not(None),  # the request itself, not the admin's record of it
        )
        .order_by(Decision.id.desc())
    ).scalars()
    for row in rows:
        earlier = row.parameters or {}
        if earlier.get("scopes") != parameters.get("scopes"):
            continue  # another choice of scopes is another request
        if not (earlier.get("deadline_kind") and parameters.get("deadline_kind")):
            return row
        if (earlier["deadline_kind"], earlier.get("due_date")) == (
            parameters["deadline_kind"],
            parameters.get("due_date"),
        ):
            return row
    return None


def resolve(request: Decision, status: str, admin: Actor) -> None:
    """An admin's answer on the request row (`approved` or `denied`); its key is free again."""
    request.status = status
    request.approved_by = admin.slack_id if status == APPROVED else None
    ledger.merge(request, decided_by=admin.slack_id)
    ledger.release(request, status)
