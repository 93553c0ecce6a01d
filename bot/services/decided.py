"""What owners and admins already decided about tokens' deadlines, read from the `decision` rows:
which deadlines are settled, which tokens must hear no more, which deadlines are snoozed until
when. A reminder run plans around it (bot/services/reminders.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session

from bot.models import Decision, DecisionAction, DecisionStatus
from bot.services.decisions import SETTLING_ACTIONS


@dataclass
class Decided:
    settled: set[tuple[int, str, date]]  # (token, deadline kind, due date) decided
    silenced: set[int]  # tokens revoked, or handed back and not yet given a new owner
    snoozed: dict[tuple[int, str, date], datetime]  # snoozed until


LIVE = (DecisionStatus.APPLIED, DecisionStatus.REQUESTED, DecisionStatus.APPROVED)


def decided_for(session: Session, pks: set[int]) -> Decided:
    """What owners and admins already decided for these tokens' deadlines."""
    decided = Decided(set(), set(), {})
    handed_back: dict[int, datetime] = {}
    assigned: dict[int, datetime] = {}
    rows = session.execute(
        select(
            Decision.token_pk, Decision.action, Decision.status, Decision.parameters, Decision.created_at
        ).where(Decision.token_pk.in_(list(pks)), Decision.status.in_(LIVE))
    )
    for token_pk, action, status, parameters, created_at in rows:
        parameters = parameters or {}
        if parameters.get("dry_run"):
            continue  # nothing happened in Databricks: the deadline still stands
        key = deadline_key(token_pk, parameters)
        if action == DecisionAction.NOT_MINE:
            handed_back[token_pk] = max(created_at, handed_back.get(token_pk, created_at))
        elif action == DecisionAction.ASSIGN_OWNER and status == DecisionStatus.APPLIED:
            assigned[token_pk] = max(created_at, assigned.get(token_pk, created_at))
        elif action == DecisionAction.REVOKE and status in (DecisionStatus.APPLIED, DecisionStatus.APPROVED):
            decided.silenced.add(token_pk)
        elif action == DecisionAction.SNOOZE and key and parameters.get("until"):
            until = datetime.fromisoformat(parameters["until"])
            decided.snoozed[key] = max(until, decided.snoozed.get(key, until))
        elif action in SETTLING_ACTIONS and key:
            decided.settled.add(key)
    # "Not mine" stops the owner's reminders until an admin assigns an owner.
    decided.silenced.update(pk for pk, when in handed_back.items() if assigned.get(pk, when) <= when)
    return decided


def deadline_key(token_pk: int, parameters: dict) -> tuple[int, str, date] | None:
    kind, due = parameters.get("deadline_kind"), parameters.get("due_date")
    if not kind or not due:
        return None
    try:
        return (token_pk, str(kind), date.fromisoformat(str(due)[:10]))
    except ValueError:
        return None
