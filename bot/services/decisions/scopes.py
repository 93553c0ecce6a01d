"""Confirm scopes and Restore scopes: set a token's scopes by hand (PATCH update_mask=scopes).

Both read the token from Databricks before the PATCH and never trust tokenbot's copy alone:
Restore adds to the live scopes (and refuses when the token has `all-apis` already); Confirm is
refused as `stale` when the live scopes are not the ones tokenbot showed the owner. Neither needs
an idempotency key: the claim (`ledger.claim`) keeps a second decision off the token while the
read and the PATCH run, the token row then shows the scopes set, and setting the same scopes again
is refused as `no_change`. Privileged scopes chosen by a non-admin become a request to the admins.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session

from bot.databricks.records import GatewayError, WorkspaceGateway
from bot.domain.scopes import PRIVILEGED_SCOPES, is_known
from bot.domain.tokens import AUTOSCOPE_USER_SELECTED
from bot.models import Decision, Token
from bot.services.decisions import ledger, lost_answers, requests, wording
from bot.services.decisions.model import (
    CONFIRM_SCOPES,
    RESTORE,
    Actor,
    DeadlineRef,
    GatewayFactory,
    Outcome,
    Subject,
    deadline_parameters,
)


def confirm_scopes(
    *,
    session: Session,
    gateway_for: GatewayFactory,
    actor: Actor,
    token_pk: int,
    scopes: Iterable[str],
    dry_run: bool = False,
    deadline: DeadlineRef | None = None,
) -> Outcome:
    """Set the token's scopes by hand (PATCH update_mask=scopes); `authentication` or `all-apis`
    chosen by a non-admin becomes a request to the admins and nothing changes yet."""
    chosen = normalise(scopes)
    parameters = {"scopes": chosen, **deadline_parameters(deadline)}
    subject = ledger.authorize(
        session, actor, CONFIRM_SCOPES, token_pk, parameters, live=True, deadline=deadline
    )
    if isinstance(subject, Outcome):
        return subject
    problem = _scope_problem(chosen)
    if problem:
        return ledger.refuse_subject(session, subject, CONFIRM_SCOPES, parameters, "invalid", problem)
    return change_scopes(session, gateway_for, subject, CONFIRM_SCOPES, chosen, parameters, dry_run)


def restore_scopes(
    *,
    session: Session,
    gateway_for: GatewayFactory,
    actor: Actor,
    token_pk: int,
    scopes: Iterable[str],
    dry_run: bool = False,
) -> Outcome:
    """After auto-scoping narrowed a token: set its current scopes plus the chosen ones (the
    modal pre-selects the lost ones: `previous_scopes` minus the current ones, so choosing all of
    them restores the previous set). Privileged scopes need an admin as in confirm_scopes."""
    chosen = normalise(scopes)
    parameters: dict[str, Any] = {"scopes": chosen}
    subject = ledger.authorize(session, actor, RESTORE, token_pk, parameters, live=True)
    if isinstance(subject, Outcome):
        return subject
    token = subject.token
    if token.narrowed_at is None:
        message = wording.not_narrowed(token)
        return ledger.refuse_subject(session, subject, RESTORE, parameters, "invalid", message)
    problem = _scope_problem(chosen)
    if problem:
        return ledger.refuse_subject(session, subject, RESTORE, parameters, "invalid", problem)
    parameters["previous_scopes"] = list(token.previous_scopes or ())
    return change_scopes(session, gateway_for, subject, RESTORE, chosen, parameters, dry_run)


def change_scopes(
    session: Session,
    gateway_for: GatewayFactory,
    subject: Subject,
    action: str,
    chosen: list[str],
    parameters: dict[str, Any],
    dry_run: bool,
    approved_by: str | None = None,
) -> Outcome:
    """PATCH the scopes, computed from what Databricks says the token has now: Restore only adds
    to the live scopes, and Confirm goes ahead only when the scopes the owner chose from (tokenbot's
    record) are still the live ones, so no scope is removed that the owner did not choose to remove."""
    token = subject.token
    shown = normalise(token.scopes)
    privileged = sorted(PRIVILEGED_SCOPES.intersection(chosen))
    if privileged and not subject.actor.is_admin:
        parameters = {**parameters, "before": shown, "after": _target_scopes(action, shown, chosen)}
        return requests.ask(session, subject, action, parameters, wording.privileged_reason(privileged))
    # Claimed first: the read and the PATCH run with no transaction held, one decision at a time.
    claimed = ledger.claim(session, subject, action, {**parameters, "before": shown}, approved_by)
    if isinstance(claimed, Outcome):
        return claimed
    decision = claimed
    gateway, token_id = gateway_for(token.workspace), token.token_id
    try:
        live = ledger.call_outside(session, token.id, lambda: gateway.get_token(token_id))
    except GatewayError as error:
        ledger.lock_for_record(session, token.id)  # a read: nothing to check, even if its answer was lost
        return ledger.failed(decision, error, wording.could_not_read_scopes(token))
    if live is None:
        return ledger.refused(decision, "token_gone", wording.not_in_databricks(token))
    before, state = normalise(live.scopes), live.autoscope_state
    after = _target_scopes(action, before, chosen)
    # Recorded before the PATCH: `claims.settle` reads the scopes back against `after`.
    ledger.merge(decision, before=before, after=after)
    stale = _stale_scopes(action, token, before)
    if stale:
        token.scopes, token.autoscope_state = before, state  # what Databricks says, for the next modal
        return ledger.refused(decision, "stale", stale, shown=shown)
    if before == after and state == AUTOSCOPE_USER_SELECTED:
        return ledger.refused(decision, "no_change", wording.scopes_unchanged(token))
    checked = False
    try:
        ledger.databricks(session, decision, dry_run, lambda: gateway.update_scopes(token_id, after))
    except GatewayError as error:
        failure = _patch_answer_lost(session, decision, error, gateway, token, after)
        if failure is not None:
            return failure
        checked = True
    if decision.parameters.get("dry_run"):
        return ledger.applied(decision, wording.scopes_dry_run(token, after))
    set_scopes(token, after)
    return ledger.applied(decision, wording.scopes_set(token, after, checked))


def set_scopes(token: Token, scopes: list[str]) -> None:
    token.scopes = scopes
    token.autoscope_state = AUTOSCOPE_USER_SELECTED


def normalise(scopes: Iterable[str]) -> list[str]:
    return sorted({scope.strip() for scope in scopes if scope and scope.strip()})


def _target_scopes(action: str, current: Iterable[str], chosen: list[str]) -> list[str]:
    return normalise([*current, *chosen]) if action == RESTORE else chosen


def _patch_answer_lost(
    session: Session,
    decision: Decision,
    error: GatewayError,
    gateway: WorkspaceGateway,
    token: Token,
    after: list[str],
) -> Outcome | None:
    """A failed PATCH: None when its answer was lost but reading the scopes back shows it was
    applied; else the failed outcome, saying what tokenbot found."""
    what = wording.could_not_set_scopes(token)
    if not error.outcome_unknown:
        return ledger.failed(decision, error, what)
    verified = lost_answers.scopes_set(gateway, token.token_id, after)
    ledger.lock_for_record(session, token.id)
    ledger.merge(decision, answer_lost=True, verified=verified is not None)
    if verified:
        return None
    return ledger.failed(decision, error, what, tail=wording.scopes_unchecked(verified))


def _stale_scopes(action: str, token: Token, live: list[str]) -> str | None:
    """Why the write must not go ahead on these live scopes, or None."""
    if action == RESTORE and "all-apis" in live:
        return wording.nothing_to_restore(token)
    if action == CONFIRM_SCOPES and live != normalise(token.scopes):
        return wording.scopes_moved(token, live)
    return None


def _scope_problem(chosen: list[str]) -> str | None:
    if not chosen:
        return wording.NO_SCOPE
    unknown = [scope for scope in chosen if not is_known(scope)]
    if unknown:
        return wording.unknown_scopes(unknown)
    return None
