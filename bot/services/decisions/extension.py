"""Extend: an exemption from tokenbot's policy, a rotation, or the honest explanation.

- Extend on tokenbot's policy deadline adds `days` to the later of now and the deadline, up to
  `EXTENSION_LIMIT_DAYS`. Unless an admin asks, more than `policy.max_extension_days` in one click,
  or an end more than `policy.max_total_extension_days` past the original deadline (the one before
  any exemption: serial extensions add up), is a request to the admins.
- Extend on the expiry of a service-principal token with a `[[secret_bindings]]` entry rotates it
  (action `rotate`, see `rotation`).
- Other expiry, inactivity and auto-scoping deadlines cannot be lengthened by any API: Extend
  explains the real options and records `refused` with reason `not_extendable`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot import clock
from bot.domain.deadlines import Deadline, DeadlineKind
from bot.domain.policy import Policy, evaluate
from bot.models import Exemption, Token
from bot.services import report
from bot.services.decisions import ledger, lost_answers, requests, rotation, wording
from bot.services.decisions.model import (
    APPLIED,
    EXTEND,
    EXTENSION_LIMIT_DAYS,
    Actor,
    DeadlineRef,
    GatewayFactory,
    Outcome,
    Subject,
    deadline_parameters,
    parse_time,
)

if TYPE_CHECKING:
    from bot.config import SecretBinding


def extend(
    *,
    session: Session,
    gateway_for: GatewayFactory,
    actor: Actor,
    token_pk: int,
    deadline: DeadlineRef,
    days: int,
    reason: str,
    policy: Policy,
    secret_bindings: Sequence[SecretBinding] = (),
    dry_run: bool = False,
) -> Outcome:
    """Extend what can be extended: tokenbot's policy deadline (an exemption), the expiry of a
    service principal's token bound to a secret (a rotation); explain the rest."""
    parameters = {"days": days, "reason": reason, **deadline_parameters(deadline)}
    subject = ledger.authorize(session, actor, EXTEND, token_pk, parameters, live=True, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    if deadline.kind not in set(DeadlineKind):
        return _not_extendable(session, subject, deadline, parameters, policy)
    # What the deadline is, is computed here and now; the reference only says which one is meant.
    current, original = _deadline_now(session, subject.token, deadline, policy)
    if current is None:
        return ledger.stale(session, subject, EXTEND, parameters, deadline)
    deadline = DeadlineRef.of(current)
    parameters.update(deadline_parameters(deadline))
    if deadline.kind == DeadlineKind.ORG_POLICY:
        return _exempt(session, subject, deadline, original or current, days, parameters, policy)
    if deadline.kind == DeadlineKind.EXPIRY:
        binding = _binding_for(subject, secret_bindings)
        if binding is not None:
            return rotation.rotate(session, gateway_for, subject, parameters, binding, policy, dry_run)
    return _not_extendable(session, subject, deadline, parameters, policy)


def _deadline_now(
    session: Session, token: Token, deadline: DeadlineRef, policy: Policy
) -> tuple[Deadline | None, Deadline | None]:
    """The token's deadline of this kind on this day as tokenbot computes it now, and the same
    deadline before any exemption moved it (the original); (None, None) when there is none."""
    now = clock.now()
    views = report.token_views(session=session, policy=policy, now=now, token_pks=[token.id])
    if not views:
        return None, None
    current = next(
        (
            d
            for d in views[0].evaluation.deadlines
            if str(d.kind) == deadline.kind and d.due_at.date() == deadline.due_date
        ),
        None,
    )
    if current is None:
        return None, None
    unexempted = evaluate(replace(views[0].evaluation.token, exemptions=()), policy, now)
    original = next((d for d in unexempted.deadlines if d.kind == current.kind), None)
    return current, original


def _exempt(
    session: Session,
    subject: Subject,
    deadline: DeadlineRef,
    original: Deadline,
    days: int,
    parameters: dict[str, Any],
    policy: Policy,
) -> Outcome:
    limit = policy.max_extension_days
    if not 1 <= days <= EXTENSION_LIMIT_DAYS:
        message = wording.days_out_of_range(EXTENSION_LIMIT_DAYS, limit)
        return ledger.refuse_subject(session, subject, EXTEND, parameters, "invalid", message)
    until = max(clock.now(), deadline.due_at) + timedelta(days=days)
    parameters["until"] = until.isoformat()
    done = ledger.refuse_repeat(
        session, subject, EXTEND, parameters, _key(subject, parameters), wording.extended_already
    )
    if done is not None:
        return done
    # An owner's own extensions, one after the other, may move the deadline at most
    # max_total_extension_days past where the policy put it; beyond that an admin decides.
    cap = original.due_at + timedelta(days=policy.max_total_extension_days)
    parameters["original_due_at"] = original.due_at.isoformat()
    if not subject.actor.is_admin:
        if days > limit:
            why = wording.over_limit(limit)
            return requests.ask(session, subject, EXTEND, parameters, why)
        if until > cap:
            why = wording.beyond_total(policy, original.due_at, cap)
            return requests.ask(session, subject, EXTEND, parameters, why)
    return grant_exemption(session, subject, parameters, approved_by=subject.actor.slack_id)


def _key(subject: Subject, parameters: dict[str, Any]) -> str:
    return ledger.extend_key(subject.token.id, parameters["deadline_kind"], parameters["due_date"])


def grant_exemption(
    session: Session, subject: Subject, parameters: dict[str, Any], approved_by: str
) -> Outcome:
    """Record the exemption `parameters` describe (an owner's, or a request an admin approved)."""
    token = subject.token
    claimed = ledger.claim_once(
        session,
        subject,
        EXTEND,
        parameters,
        _key(subject, parameters),
        wording.extended_already,
        approved_by=approved_by,
    )
    if isinstance(claimed, Outcome):
        return claimed
    until = parse_time(parameters["until"])
    exemption = Exemption(
        token_pk=token.id,
        deadline_kind=parameters["deadline_kind"],
        until=until,
        reason=parameters.get("reason") or "",
        requested_by=parameters.get("requested_by") or subject.actor.slack_id,
        approved_by=approved_by,
        created_at=clock.now(),
    )
    session.add(exemption)
    session.flush()
    ledger.finish(claimed, APPLIED, exemption_id=exemption.id)
    return ledger.outcome(claimed, wording.extended(token, until))


def _binding_for(subject: Subject, bindings: Sequence[SecretBinding]) -> SecretBinding | None:
    """The first binding for this service principal's token: every selector given must match."""
    owner, token = subject.owner, subject.token
    if owner is None or owner.kind != "service_principal" or not owner.application_id:
        return None
    for binding in bindings:
        if binding.workspace != token.workspace:
            continue
        if binding.application_id and binding.application_id != owner.application_id:
            continue
        comment = lost_answers.unmarked(token.comment)  # a token made by an earlier rotation
        if binding.comment_pattern and not re.search(binding.comment_pattern, comment):
            continue
        return binding
    return None


def _not_extendable(
    session: Session, subject: Subject, deadline: DeadlineRef, parameters: dict[str, Any], policy: Policy
) -> Outcome:
    service_principal = subject.owner is not None and subject.owner.kind == "service_principal"
    message = wording.not_extendable(subject.token, deadline, policy, service_principal)
    if message is None:
        message = wording.no_such_deadline(deadline.kind)
        return ledger.refuse_subject(session, subject, EXTEND, parameters, "invalid", message)
    return ledger.refuse_subject(session, subject, EXTEND, parameters, "not_extendable", message)
