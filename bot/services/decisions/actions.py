"""Decisions: what a button does (DESIGN.md section 4), checked, applied through Databricks and
recorded. No Slack here: the listeners call these functions and show `Outcome.message`.

Rules every function follows:

- Keyword-only arguments, session first; the caller owns the transaction (`session_scope()`):
  functions flush, never commit, so a Databricks call and its record succeed or fail together.
- Authorization from the database on every call: the actor is the token's owner (the principal's
  `slack_user_id` or its admin-assigned `owner_slack_id`) or an admin (`Actor.is_admin`, decided by
  the caller from `slack.admins` / `admin_group`). `approve`, `deny` and `assign_owner` are for
  admins only. An unknown token, a stranger, or a token already gone is refused; nothing is called.
- Every attempt writes one `decision` row, refused ones included. Its status is `requested`
  (awaiting an admin), `applied`, `failed` (a Databricks error; the token row is unchanged),
  `refused` (parameters["refused"] says why: not_owner, not_admin, unknown_token, token_gone,
  invalid, duplicate, no_change, not_extendable, stale_reference, denied_before,
  stale), or, on a request an
  admin resolved, `approved` / `denied`. Decisions about a deadline carry `deadline_kind`, `due_date`
  (ISO date) and `due_at`: those of the deadline tokenbot computes now. A reference to any other
  (moved since the message, or made up) is refused as `stale_reference`.
- Dry run (`TOKENBOT_DRY_RUN`): `_databricks()` is the one place that checks it; the decision is
  recorded `applied` with parameters["dry_run"] = true, and no mutating call is made.
- Token values are never stored, logged or put in a message: a rotated token's value exists only
  between the create call and the secret write (`CreatedToken.value`).
- A write whose answer was lost (`GatewayError.outcome_unknown`) is checked before anyone is told
  (`lost_answers`): a revoke reads the token (404 = revoked), a PATCH reads the scopes back, a
  rotation reads the secret's last write time and sweeps the tokens it marked. A rotation whose
  secret nobody could check stays `failed` with parameters["outcome"] = "unknown", keeping its new
  token and its key, until Retry or `complete_rotations` checks again.

Idempotency. Decisions on one token run one at a time: each call first locks the token row until
the caller's transaction ends (`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite, which has no row
locks, a no-op UPDATE takes the database's write lock). Under that lock a call sees what the one
before it did, so a double click, a Slack retry, 20 parallel clicks or two admins at once give one
Databricks call and one applied decision; the others are `refused` as duplicates, naming who did it.
Behind the lock, the unique `decision.idempotency_key` holds one claim per thing that may happen
once: `revoke:<token>` (`...:dry-run` in dry run), `rotate:<token>`, `accept:<token>:<kind>:<due>`,
`extend:<token>:<kind>:<due>`, `snooze:<token>:<kind>:<due>:<day>`, and `request:<token>:<action>`
for an open request to the admins. The claim is inserted in a SAVEPOINT before Databricks is
called; a failure renames it (`<key>:failed:<id>`) so Retry can claim again, and resolving a
request releases its key. Confirm and restore need no key: the token row shows the scopes already
set, and setting the same scopes again is refused as `no_change`.

Choices made here:

- Extend on tokenbot's policy deadline adds `days` to the later of now and the deadline, up to
  `EXTENSION_LIMIT_DAYS`. Unless an admin asks, more than `policy.max_extension_days` in one click,
  or an end more than `policy.max_total_extension_days` past the original deadline (the one before
  any exemption: serial extensions add up), is a request to the admins.
- Extend on the expiry of a service-principal token with a `[[secret_bindings]]` entry rotates it
  (action `rotate`); the old token is revoked by `complete_rotations` after the grace period. Other
  expiry, inactivity and auto-scoping deadlines cannot be lengthened by any API: Extend explains the
  real options and records `refused` with reason `not_extendable`.
- Restore sets the token's current scopes plus the chosen ones; the modal pre-selects the lost
  scopes (`previous_scopes` minus the current ones), so choosing all of them restores the previous set.
- Confirm and Restore read the token from Databricks before the PATCH and never trust tokenbot's
  copy alone: Restore adds to the live scopes (and refuses when the token has `all-apis` already);
  Confirm is refused as `stale` when the live scopes are not the ones tokenbot showed the owner.
- `assign_owner` works for users' tokens too (a wrong Slack match, a leaver): the owner is kept on
  the principal, so it applies to every token of that principal in the workspace.
- The approval of a request is a new row with the request's action and `approved_by`; the request
  row itself becomes `approved` or `denied`. Messages name people as Slack mentions (`<@U123>`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot import clock
from bot.databricks.records import GatewayError, WorkspaceGateway
from bot.domain.policy import (
    AUTOSCOPE_USER_SELECTED,
    DEADLINE_LABELS,
    Deadline,
    DeadlineKind,
    Policy,
    evaluate,
)
from bot.domain.scopes import PRIVILEGED_SCOPES, is_known
from bot.models import Decision, Exemption, Principal, Token
from bot.services import inventory, lost_answers, report, rotation_steps

if TYPE_CHECKING:
    from bot.config import SecretBinding

logger = logging.getLogger(__name__)
T = TypeVar("T")

# statuses
REQUESTED, APPROVED, APPLIED = "requested", "approved", "applied"
FAILED, DENIED, REFUSED = "failed", "denied", "refused"
# actions
CONFIRM_SCOPES, ACCEPT, EXTEND, ROTATE, REVOKE = "confirm_scopes", "accept", "extend", "rotate", "revoke"
SNOOZE, NOT_MINE, ASSIGN_OWNER, RESTORE = "snooze", "not_mine", "assign_owner", "restore"
APPROVE, DENY = "approve", "deny"  # only refused attempts carry these; see approve()
# roles
OWNER, ADMIN, OTHER, TOKENBOT_ROLE = "owner", "admin", "other", "tokenbot"

EXTENSION_LIMIT_DAYS = 365
SNOOZE_FOR = timedelta(days=1)
STALE_REFERENCE = "stale_reference"
DENIED_BEFORE = "denied_before"
# Decisions that settle a deadline: reminders about it stop (see stops_reminders).
SETTLING_ACTIONS = frozenset({ACCEPT, CONFIRM_SCOPES, EXTEND, ROTATE, REVOKE, RESTORE})
APPROVABLE = frozenset({CONFIRM_SCOPES, RESTORE, EXTEND})
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")

GatewayFactory = inventory.GatewayFactory


@dataclass(frozen=True, slots=True)
class Actor:
    """Who clicked: a Slack user id, and whether the caller found them in the admins."""

    slack_id: str
    is_admin: bool = False


TOKENBOT = Actor(slack_id="tokenbot", is_admin=True)  # the bot's own follow-ups (rotations)


@dataclass(frozen=True, slots=True)
class DeadlineRef:
    """The deadline a decision is about, as the reminder showed it."""

    kind: str  # a DeadlineKind value
    due_at: datetime
    # The reference names a deadline tokenbot does not compute for the token now (moved, or made up):
    # the decision is refused as `stale_reference`.
    stale: bool = False

    @property
    def due_date(self) -> date:
        return self.due_at.date()

    @classmethod
    def of(cls, deadline: Deadline) -> DeadlineRef:
        return cls(kind=str(deadline.kind), due_at=deadline.due_at)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened, for the person who clicked; every outcome has its decision row."""

    status: str
    message: str  # plain words, ready to show
    action: str
    decision_id: int
    token_pk: int | None
    actor_slack_id: str
    decided_at: datetime
    parameters: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    duplicate_of: int | None = None  # the earlier decision that already did this

    @property
    def already_gone(self) -> bool:
        return bool(self.parameters.get("already_gone"))

    @property
    def dry_run(self) -> bool:
        return bool(self.parameters.get("dry_run"))

    @property
    def retryable(self) -> bool:
        """A Databricks failure: offering Retry makes sense."""
        return self.status == FAILED


@dataclass
class _Subject:
    """A token a decision is about, locked, with its owner and the actor's role."""

    token: Token
    owner: Principal | None
    actor: Actor
    role: str


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
    parameters = {"reason": reason, **_deadline_parameters(deadline)}
    subject = _authorize(session, actor, REVOKE, token_pk, parameters, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    token = subject.token
    key = _revoke_key(token.id, dry_run)
    earlier = _holder(session, key)
    if earlier is not None:
        if token.gone_at is not None or dry_run:
            return _duplicate(session, subject, REVOKE, parameters, earlier, _revoked_already(token, earlier))
        _release(earlier, "relisted")  # Databricks lists it again since: revoke it for real
    if token.gone_at is not None:
        return _record_already_gone(session, subject, parameters, key)
    decision = _claim(session, subject, REVOKE, parameters, key)
    if decision is None:
        return _busy(session, subject, REVOKE, parameters)
    try:
        deleted = _databricks(
            decision, dry_run, lambda: gateway_for(token.workspace).delete_token(token.token_id)
        )
    except GatewayError as error:
        if not error.outcome_unknown:
            return _failed(decision, error, f"Could not revoke {_label(token)}")
        return _revoke_answer_lost(decision, error, gateway_for(token.workspace), token)
    if decision.parameters.get("dry_run"):
        return _applied(decision, f"Dry run: {_label(token)} would have been revoked; nothing was changed.")
    _mark_gone(token)
    if not deleted:
        _finish(decision, APPLIED, already_gone=True)
        # A 404 says the token is gone, not who revoked it: the SDK retries a DELETE whose answer
        # was lost, and the retry finds the token the first attempt revoked.
        return _outcome(
            decision,
            f"{_sentence_label(token)} is revoked: Databricks no longer has it (revoked earlier by "
            "Databricks or someone else, or by this request, whose first answer may have been lost).",
        )
    return _applied(decision, f"Revoked {_label(token)}.")


def _revoke_answer_lost(
    decision: Decision, error: GatewayError, gateway: WorkspaceGateway, token: Token
) -> Outcome:
    """The DELETE got no answer: read the token back (404 means the revoke was applied)."""
    verified = lost_answers.gone(gateway, token.token_id)
    _merge(decision, answer_lost=True, verified=verified is not None)
    if verified:
        _mark_gone(token)
        return _applied(
            decision,
            f"Revoked {_label(token)}. Databricks' answer was lost on the way; tokenbot checked "
            "that the token no longer exists.",
        )
    if verified is False:
        tail = "tokenbot checked: the token still exists and still works. You can try again."
    else:
        tail = (
            "tokenbot could not check whether it was revoked, so it may still work. Try again: "
            "revoking a token that is already gone is safe."
        )
    return _failed(decision, error, f"Could not revoke {_label(token)}", tail=tail)


def _revoke_key(token_pk: int, dry_run: bool) -> str:
    return f"revoke:{token_pk}" + (":dry-run" if dry_run else "")


def _record_already_gone(session: Session, subject: _Subject, parameters: dict, key: str) -> Outcome:
    decision = _claim(session, subject, REVOKE, {**parameters, "already_gone": True}, key)
    if decision is None:
        return _busy(session, subject, REVOKE, parameters)
    _finish(decision, APPLIED)
    return _outcome(decision, _gone_message(subject.token))


def _mark_gone(token: Token) -> None:
    token.gone_at = clock.now()
    token.gone_reason = "revoked"


def _gone_message(token: Token) -> str:
    if token.gone_reason == "expired":
        return f"{_sentence_label(token)} had already expired."
    return f"{_sentence_label(token)} was already gone (revoked by Databricks or someone else)."


def _revoked_already(token: Token, earlier: Decision) -> str:
    dry = " (dry run)" if earlier.parameters.get("dry_run") else ""
    return (
        f"{_sentence_label(token)} was already revoked{dry} by {_who(earlier.actor_slack_id)} "
        f"on {_when(earlier.updated_at)}."
    )


# =============================================================================================
# scopes: confirm, restore


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
    chosen = _normalise(scopes)
    parameters = {"scopes": chosen, **_deadline_parameters(deadline)}
    subject = _authorize(session, actor, CONFIRM_SCOPES, token_pk, parameters, live=True, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    problem = _scope_problem(chosen)
    if problem:
        return _refuse_subject(session, subject, CONFIRM_SCOPES, parameters, "invalid", problem)
    return _change_scopes(session, gateway_for, subject, CONFIRM_SCOPES, chosen, parameters, dry_run)


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
    modal pre-selects the lost ones). Privileged scopes need an admin as in confirm_scopes."""
    chosen = _normalise(scopes)
    parameters: dict[str, Any] = {"scopes": chosen}
    subject = _authorize(session, actor, RESTORE, token_pk, parameters, live=True)
    if isinstance(subject, Outcome):
        return subject
    token = subject.token
    if token.narrowed_at is None:
        message = f"{_sentence_label(token)} was not narrowed by auto-scoping; use Confirm scopes instead."
        return _refuse_subject(session, subject, RESTORE, parameters, "invalid", message)
    problem = _scope_problem(chosen)
    if problem:
        return _refuse_subject(session, subject, RESTORE, parameters, "invalid", problem)
    parameters["previous_scopes"] = list(token.previous_scopes or ())
    return _change_scopes(session, gateway_for, subject, RESTORE, chosen, parameters, dry_run)


def _target_scopes(action: str, current: Iterable[str], chosen: list[str]) -> list[str]:
    return _normalise([*current, *chosen]) if action == RESTORE else chosen


def _change_scopes(
    session: Session,
    gateway_for: GatewayFactory,
    subject: _Subject,
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
    shown = _normalise(token.scopes)
    privileged = sorted(PRIVILEGED_SCOPES.intersection(chosen))
    if privileged and not subject.actor.is_admin:
        parameters = {**parameters, "before": shown, "after": _target_scopes(action, shown, chosen)}
        return _request_approval(session, subject, action, parameters, _privileged_reason(privileged))
    try:
        live = gateway_for(token.workspace).get_token(token.token_id)
    except GatewayError as error:
        decision = _start(session, subject, action, {**parameters, "before": shown}, approved_by=approved_by)
        return _failed(decision, error, f"Could not read the current scopes of {_label(token)}")
    if live is None:
        message = f"{_sentence_label(token)} no longer exists in Databricks; nothing was changed."
        return _refuse_subject(session, subject, action, parameters, "token_gone", message)
    before, state = _normalise(live.scopes), live.autoscope_state
    after = _target_scopes(action, before, chosen)
    parameters = {**parameters, "before": before, "after": after}
    stale = _stale_scopes(action, token, before)
    if stale:
        token.scopes, token.autoscope_state = before, state  # what Databricks says, for the next modal
        return _refuse_subject(session, subject, action, {**parameters, "shown": shown}, "stale", stale)
    if before == after and state == AUTOSCOPE_USER_SELECTED:
        message = f"{_sentence_label(token)} already has exactly these scopes; nothing to change."
        return _refuse_subject(session, subject, action, parameters, "no_change", message)
    decision = _start(session, subject, action, parameters, approved_by=approved_by)
    checked = ""
    try:
        _databricks(
            decision, dry_run, lambda: gateway_for(token.workspace).update_scopes(token.token_id, after)
        )
    except GatewayError as error:
        failure = _patch_answer_lost(decision, error, gateway_for(token.workspace), token, after)
        if failure is not None:
            return failure
        checked = " Databricks' answer was lost on the way; tokenbot read the scopes back to check."
    if decision.parameters.get("dry_run"):
        return _applied(
            decision, f"Dry run: {_label(token)} would now have {_list(after)}; nothing was changed."
        )
    token.scopes = after
    token.autoscope_state = AUTOSCOPE_USER_SELECTED
    return _applied(
        decision,
        f"{_sentence_label(token)} now has {_list(after)}.{checked} Scopes chosen by hand end auto-scoping "
        "for this token, and the change can take up to 10 minutes to take effect.",
    )


def _patch_answer_lost(
    decision: Decision, error: GatewayError, gateway: WorkspaceGateway, token: Token, after: list[str]
) -> Outcome | None:
    """A failed PATCH: None when its answer was lost but reading the scopes back shows it was
    applied; else the failed outcome, saying what tokenbot found."""
    what = f"Could not set the scopes of {_label(token)}"
    if not error.outcome_unknown:
        return _failed(decision, error, what)
    verified = lost_answers.scopes_set(gateway, token.token_id, after)
    _merge(decision, answer_lost=True, verified=verified is not None)
    if verified:
        return None
    if verified is False:
        tail = "tokenbot read the token back: the new scopes were not set. Nothing was changed; try again."
        return _failed(decision, error, what, tail=tail)
    tail = "tokenbot could not read them back, so they may or may not have changed. Try again: it is safe."
    return _failed(decision, error, what, tail=tail)


def _stale_scopes(action: str, token: Token, live: list[str]) -> str | None:
    """Why the write must not go ahead on these live scopes, or None."""
    if action == RESTORE and "all-apis" in live:
        return (
            f"{_sentence_label(token)} has full access (all-apis) in Databricks now; there is nothing to "
            "restore, and nothing was changed."
        )
    if action == CONFIRM_SCOPES and live != _normalise(token.scopes):
        return (
            f"{_sentence_label(token)} has {_list(live)} in Databricks now, not {_list(token.scopes)} as "
            "tokenbot showed; nothing was changed. Open Confirm scopes again to choose from its current "
            "scopes."
        )
    return None


def _privileged_reason(privileged: list[str]) -> str:
    what = {"authentication": "can create new tokens", "all-apis": "gives full access to every API"}
    parts = [f"{scope} ({what.get(scope, 'privileged')})" for scope in privileged]
    return f"{' and '.join(parts)} needs an admin's approval"


def _normalise(scopes: Iterable[str]) -> list[str]:
    return sorted({scope.strip() for scope in scopes if scope and scope.strip()})


def _scope_problem(chosen: list[str]) -> str | None:
    if not chosen:
        return "Choose at least one scope."
    unknown = [scope for scope in chosen if not is_known(scope)]
    if unknown:
        return f"Unknown scope{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. Choose from the list."
    return None


# =============================================================================================
# accept, snooze


def accept(*, session: Session, actor: Actor, token_pk: int, deadline: DeadlineRef) -> Outcome:
    """The owner agrees to what will happen (usually the inferred scopes); reminders stop."""
    parameters = _deadline_parameters(deadline)
    subject = _authorize(session, actor, ACCEPT, token_pk, parameters, live=True, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    token = subject.token
    if deadline.kind == DeadlineKind.AUTOSCOPE_ENFORCEMENT:
        parameters["inferred_scopes"] = list(token.inferred_scopes or ())
    key = f"accept:{token.id}:{deadline.kind}:{deadline.due_date.isoformat()}"
    earlier = _holder(session, key)
    if earlier is not None:
        message = f"Already accepted by {_who(earlier.actor_slack_id)} on {_when(earlier.updated_at)}."
        return _duplicate(session, subject, ACCEPT, parameters, earlier, message)
    decision = _claim(session, subject, ACCEPT, parameters, key)
    if decision is None:
        return _busy(session, subject, ACCEPT, parameters)
    return _applied(decision, _accepted_message(token, deadline))


def _accepted_message(token: Token, deadline: DeadlineRef) -> str:
    day = deadline.due_date.isoformat()
    if deadline.kind == DeadlineKind.AUTOSCOPE_ENFORCEMENT:
        inferred = _list(token.inferred_scopes) if token.inferred_scopes else "the scopes it observed"
        return f"Accepted: on {day} Databricks narrows {_label(token)} to {inferred}. No more reminders."
    return f"Noted: no more reminders about what happens to {_label(token)} on {day}."


def snooze(*, session: Session, actor: Actor, token_pk: int, deadline: DeadlineRef) -> Outcome:
    """The next reminder about this deadline comes tomorrow, or at the deadline if that is sooner."""
    now = clock.now()
    parameters = _deadline_parameters(deadline)
    subject = _authorize(session, actor, SNOOZE, token_pk, parameters, live=True, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    if deadline.due_at <= now:
        message = "The deadline has passed; there is nothing to snooze."
        return _refuse_subject(session, subject, SNOOZE, parameters, "invalid", message)
    until = min(now + SNOOZE_FOR, deadline.due_at)
    parameters["until"] = until.isoformat()
    key = (
        f"snooze:{subject.token.id}:{deadline.kind}:{deadline.due_date.isoformat()}:{now.date().isoformat()}"
    )
    earlier = _holder(session, key)
    if earlier is not None:
        message = f"Already snoozed until {_when(_parse_time(earlier.parameters['until']))}."
        return _duplicate(session, subject, SNOOZE, parameters, earlier, message)
    decision = _claim(session, subject, SNOOZE, parameters, key)
    if decision is None:
        return _busy(session, subject, SNOOZE, parameters)
    when = "tomorrow" if until == now + SNOOZE_FOR else f"at {_when(until)}, when it is due"
    return _applied(decision, f"Snoozed: the next reminder about {_label(subject.token)} comes {when}.")


# =============================================================================================
# extend: an exemption, a rotation, or the honest explanation


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
    parameters = {"days": days, "reason": reason, **_deadline_parameters(deadline)}
    subject = _authorize(session, actor, EXTEND, token_pk, parameters, live=True, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    if deadline.kind not in set(DeadlineKind):
        return _not_extendable(session, subject, deadline, parameters, policy)
    # What the deadline is, is computed here and now; the reference only says which one is meant.
    current, original = _deadline_now(session, subject.token, deadline, policy)
    if current is None:
        return _stale(session, subject, EXTEND, parameters, deadline)
    deadline = DeadlineRef.of(current)
    parameters.update(_deadline_parameters(deadline))
    if deadline.kind == DeadlineKind.ORG_POLICY:
        return _exempt(session, subject, deadline, original or current, days, parameters, policy)
    if deadline.kind == DeadlineKind.EXPIRY:
        binding = _binding_for(subject, secret_bindings)
        if binding is not None:
            return _rotate(session, gateway_for, subject, parameters, binding, policy, dry_run)
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
    subject: _Subject,
    deadline: DeadlineRef,
    original: Deadline,
    days: int,
    parameters: dict[str, Any],
    policy: Policy,
) -> Outcome:
    limit = policy.max_extension_days
    if not 1 <= days <= EXTENSION_LIMIT_DAYS:
        message = (
            f"Choose between 1 and {EXTENSION_LIMIT_DAYS} days (up to {limit} without an admin's approval)."
        )
        return _refuse_subject(session, subject, EXTEND, parameters, "invalid", message)
    until = max(clock.now(), deadline.due_at) + timedelta(days=days)
    parameters["until"] = until.isoformat()
    done = _extended_already(session, subject, parameters)
    if done is not None:
        return done
    # An owner's own extensions, one after the other, may move the deadline at most
    # max_total_extension_days past where the policy put it; beyond that an admin decides.
    cap = original.due_at + timedelta(days=policy.max_total_extension_days)
    parameters["original_due_at"] = original.due_at.isoformat()
    if not subject.actor.is_admin:
        if days > limit:
            why = f"more than {limit} days needs an admin's approval"
            return _request_approval(session, subject, EXTEND, parameters, why)
        if until > cap:
            why = (
                f"extensions beyond {policy.max_total_extension_days} days past the original deadline "
                f"({original.due_at.date().isoformat()}) need an admin's approval; without one you "
                f"could extend until {cap.date().isoformat()} at most"
            )
            return _request_approval(session, subject, EXTEND, parameters, why)
    return _grant_exemption(session, subject, parameters, approved_by=subject.actor.slack_id)


def _extend_key(token_pk: int, kind: str, due_date: str) -> str:
    return f"extend:{token_pk}:{kind}:{due_date}"


def _extended_already(session: Session, subject: _Subject, parameters: dict[str, Any]) -> Outcome | None:
    key = _extend_key(subject.token.id, parameters["deadline_kind"], parameters["due_date"])
    earlier = _holder(session, key)
    if earlier is None:
        return None
    message = (
        f"This deadline was already extended by {_who(earlier.actor_slack_id)}, "
        f"until {_when(_parse_time(earlier.parameters['until']))}."
    )
    return _duplicate(session, subject, EXTEND, parameters, earlier, message)


def _grant_exemption(
    session: Session, subject: _Subject, parameters: dict[str, Any], approved_by: str
) -> Outcome:
    token = subject.token
    done = _extended_already(session, subject, parameters)
    if done is not None:
        return done
    key = _extend_key(token.id, parameters["deadline_kind"], parameters["due_date"])
    decision = _claim(session, subject, EXTEND, parameters, key, approved_by=approved_by)
    if decision is None:
        return _busy(session, subject, EXTEND, parameters)
    until = _parse_time(parameters["until"])
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
    _finish(decision, APPLIED, exemption_id=exemption.id)
    return _outcome(
        decision, f"Extended: tokenbot's policy leaves {_label(token)} alone until {_when(until)}."
    )


def _binding_for(subject: _Subject, bindings: Sequence[SecretBinding]) -> SecretBinding | None:
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
    session: Session, subject: _Subject, deadline: DeadlineRef, parameters: dict[str, Any], policy: Policy
) -> Outcome:
    token, day = subject.token, deadline.due_date.isoformat()
    if deadline.kind == DeadlineKind.EXPIRY:
        message = (
            f"Databricks cannot lengthen a token's life: it was fixed when {_label(token)} was created. "
            f"Before {day}, create a new token and switch to it, or, for a job, move to OAuth "
            "machine-to-machine with a service principal, whose credentials renew themselves."
        )
        if subject.owner is not None and subject.owner.kind == "service_principal":
            message += " An admin can also bind this service principal to a secret so tokenbot rotates it."
    elif deadline.kind == DeadlineKind.INACTIVITY_REVOCATION:
        message = (
            f"Databricks revokes tokens unused for {policy.inactivity_revocation_days} days and no "
            f"setting changes that for one token. Using {_label(token)} once (any API call) before "
            f"{day} starts the {policy.inactivity_revocation_days} days again; if nothing uses it "
            "any more, let it go."
        )
    elif deadline.kind == DeadlineKind.AUTOSCOPE_ENFORCEMENT:
        message = (
            "Auto-scoping enforcement cannot be postponed. Accept the inferred scopes, or Confirm "
            "scopes to choose them yourself (this turns auto-scoping off for this token)."
        )
    else:
        message = f"There is no deadline of kind {deadline.kind!r} to extend."
        return _refuse_subject(session, subject, EXTEND, parameters, "invalid", message)
    return _refuse_subject(session, subject, EXTEND, parameters, "not_extendable", message)


# =============================================================================================
# rotation


# A step whose answer was lost is checked before the outcome is told (rotation_steps). A secret
# write that nobody could check leaves the rotation `failed` with parameters["outcome"] "unknown"
# and its key held: the new token is kept (the secret may hold it), the old one is not revoked, and
# nothing else rotates this token until Retry checks the secret again (_settle).


def _rotate(
    session: Session,
    gateway_for: GatewayFactory,
    subject: _Subject,
    parameters: dict[str, Any],
    binding: SecretBinding,
    policy: Policy,
    dry_run: bool,
) -> Outcome:
    token, owner = subject.token, subject.owner
    assert owner is not None and owner.application_id  # _binding_for checked it
    parameters = {
        **parameters,
        "application_id": owner.application_id,
        "secret_scope": binding.scope,
        "secret_key": binding.key,
        "lifetime_days": policy.rotation_lifetime_days,
        "grace_hours": policy.rotation_grace_hours,
    }
    key = f"rotate:{token.id}" + (":dry-run" if dry_run else "")
    earlier, note = _holder(session, key), ""
    if earlier is not None and _unsettled(earlier):
        gateway = gateway_for(token.workspace)
        settled = _settle(session, gateway, subject, parameters, earlier, binding, policy)
        if settled is not None:
            return settled
        earlier = None
        note = "The last rotation's new token never reached the secret (checked now) and was revoked. "
    if earlier is not None:
        message = (
            f"{_sentence_label(token)} was already rotated by {_who(earlier.actor_slack_id)} on "
            f"{_when(earlier.updated_at)}; the new token is in {binding.scope}/{binding.key}."
        )
        return _duplicate(session, subject, ROTATE, parameters, earlier, message)
    decision = _claim(session, subject, ROTATE, parameters, key)
    if decision is None:
        return _busy(session, subject, ROTATE, parameters)
    sweep_ids, keep = _earlier_rotations(session, token.id)
    rotated = _databricks(
        decision,
        dry_run,
        lambda: rotation_steps.create_and_store(
            gateway_for(token.workspace),
            decision_id=decision.id,
            application_id=owner.application_id or "",
            lifetime_seconds=policy.rotation_lifetime_days * 86400,
            comment=token.comment or "",
            scopes=list(token.scopes or ()),
            scope=binding.scope,
            key=binding.key,
            sweep_ids={*sweep_ids, decision.id},
            keep=keep,
        ),
    )
    if rotated is None:
        return _applied(
            decision,
            f"Dry run: a new token for {owner.application_id} would have been written to "
            f"{binding.scope}/{binding.key}; nothing was changed.",
        )
    return _rotation_outcome(decision, rotated, token, binding, policy, note)


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
    binding: SecretBinding,
    policy: Policy,
    note: str,
) -> Outcome:
    where, sweep = f"{binding.scope}/{binding.key}", rotated.sweep
    _merge(
        decision,
        new_token_id=rotated.new_token_id,
        answer_lost=rotated.answer_lost,
        orphans_checked=sweep.checked,
        orphans_revoked=sweep.revoked,
        orphans_left=sweep.left,
    )
    swept = _swept_words(sweep, rotated)
    if rotated.stored:
        revoke_after = clock.now() + timedelta(hours=policy.rotation_grace_hours)
        _finish(decision, APPLIED, revoke_old_after=revoke_after.isoformat())
        checked = (
            " Databricks' answer to the secret write was lost on the way; tokenbot checked that the "
            "secret was written."
            if rotated.answer_lost
            else ""
        )
        return _outcome(
            decision,
            f"{note}Rotated: a new token (valid {policy.rotation_lifetime_days} days) is in secret "
            f"{where}.{checked} The old {_label(token)} will be revoked after "
            f"{_when(revoke_after)}; make sure what uses it reads the secret by then.{swept}",
        )
    error = rotated.error
    assert error is not None  # not stored: a step failed
    if rotated.stored is None:  # a new token that may be in the secret: keep it, hold the key
        before = rotated.secret_before.isoformat() if rotated.secret_before else None
        _finish(
            decision, FAILED, error.message, error_kind=error.kind, outcome="unknown", secret_before=before
        )
        return _outcome(
            decision,
            f"{note}Writing the new token {rotated.new_token_id} to secret {where} got no answer "
            f"({error.message}), and tokenbot could not read the secret to check. The new token is "
            f"kept, in case the secret holds it; the old {_label(token)} still works{_until(token)} "
            "and is not revoked until the new one is known to be in the secret. Retry to check again: "
            "tokenbot then keeps the rotation if the secret was written, or revokes the new token and "
            f"rotates again if not.{swept}",
        )
    _merge(decision, new_token_revoked=rotated.new_token_revoked)
    if rotated.failed_step == rotation_steps.READ_SECRET:
        return _failed(
            decision, error, f"{note}Could not read secret {where} before rotating {_label(token)}"
        )
    if rotated.failed_step == rotation_steps.CREATE:
        what = f"{note}Could not create a new token for {_label(token)}"
        return _failed(decision, error, what, tail=_create_tail(rotated))
    if rotated.new_token_revoked:
        cleanup = "The new token was revoked again; nothing was changed."
    else:
        cleanup = f"The new token {rotated.new_token_id} could not be revoked: revoke it by hand."
    if rotated.answer_lost:
        cleanup = (
            "Databricks' answer was lost on the way; tokenbot checked: the secret was not changed, "
            f"and the old token still works{_until(token)}. {cleanup}"
        )
    what = f"{note}Could not write the new token to secret {where}"
    return _failed(decision, error, what, tail=cleanup + swept)


def _until(token: Token) -> str:
    return f" until it expires on {_when(token.expires_at)}" if token.expires_at else ""


def _create_tail(rotated: rotation_steps.Rotated) -> str:
    sweep = rotated.sweep
    if sweep.revoked or sweep.left:
        return f"{_swept_words(sweep, rotated).strip()} The old token is unchanged; you can try again."
    if not rotated.answer_lost:
        return "Nothing was changed; you can try again."
    if sweep.checked:
        return "tokenbot checked: Databricks made no new token. Nothing was changed; you can try again."
    return (
        "tokenbot could not check whether Databricks made a new token anyway; the next attempt looks "
        "for it and revokes it. The old token is unchanged; you can try again."
    )


def _swept_words(sweep: lost_answers.Sweep, rotated: rotation_steps.Rotated) -> str:
    words = ""
    if sweep.revoked:
        words += (
            f" Databricks had made {len(sweep.revoked)} token(s) for calls whose answer was lost "
            f"({', '.join(sweep.revoked)}); tokenbot found and revoked them."
        )
    if sweep.left:
        words += (
            f" Token(s) {', '.join(sweep.left)}, made by calls whose answer was lost, could not be "
            "revoked: revoke them by hand."
        )
    if not sweep.checked and rotated.new_token_id:
        words += " tokenbot could not list the tokens to check that Databricks made no second one."
    return words


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
    subject: _Subject,
    parameters: dict[str, Any],
    earlier: Decision,
    binding: SecretBinding,
    policy: Policy,
) -> Outcome | None:
    """Before rotating again: check the secret of a rotation whose write nobody could check. An
    outcome (a refused duplicate saying what was found) when it was written or is still unknown;
    None when it was not (its token revoked, its key released: the caller rotates again)."""
    token, where = subject.token, f"{binding.scope}/{binding.key}"
    written = _recheck_rotation(gateway, earlier, clock.now(), policy.rotation_grace_hours)
    if written is None:
        message = (
            f"The rotation of {_label(token)} on {_when(earlier.created_at)} is still unchecked: "
            f"tokenbot still cannot read secret {where}. Nothing was done; try again later."
        )
        return _duplicate(session, subject, ROTATE, parameters, earlier, message)
    if written:
        message = (
            f"tokenbot checked the rotation of {_label(token)} made on {_when(earlier.created_at)}: "
            f"its new token is in secret {where}. The old token will be revoked after "
            f"{_when(_parse_time(earlier.parameters['revoke_old_after']))}; make sure what uses it "
            "reads the secret by then."
        )
        return _duplicate(session, subject, ROTATE, parameters, earlier, message)
    return None


def _recheck_rotation(
    gateway: WorkspaceGateway, rotation: Decision, now: datetime, grace_hours: int
) -> bool | None:
    """Read the secret of an unsettled rotation again and record what it shows: written (the
    rotation is applied; the old token goes `grace_hours` from now), not written (failed: its new
    token is revoked and its key released), or still unknown (None: nothing changes)."""
    found = rotation.parameters
    before = _parse_time(found["secret_before"]) if found.get("secret_before") else None
    written = lost_answers.secret_written(gateway, found["secret_scope"], found["secret_key"], before)
    if written:
        revoke_after = now + timedelta(hours=grace_hours)
        _finish(rotation, APPLIED, outcome="verified", revoke_old_after=revoke_after.isoformat())
    elif written is False:
        revoked = lost_answers.revoke(gateway, found["new_token_id"])
        _finish(rotation, FAILED, rotation.error, outcome="not_stored", new_token_revoked=revoked)
        _release(rotation, "failed")
    return written


def _settle_rotations(session: Session, gateway_for: GatewayFactory, now: datetime) -> None:
    """The scheduled side of _settle: every unsettled rotation is checked again, each in its own
    savepoint, under its token's lock (so it cannot race a click on Retry)."""
    query = select(Decision).where(Decision.action == ROTATE, Decision.status == FAILED)
    unsettled = [(row.id, row.token_pk) for row in session.execute(query).scalars() if _unsettled(row)]
    for decision_id, token_pk in unsettled:
        try:
            with session.begin_nested():
                token = _lock(session, Token, token_pk)
                rotation = _lock(session, Decision, decision_id)
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

    A scheduled job; each token is its own savepoint, so one failure cannot stop the others. Run
    again, it does nothing more: a revoked token is gone, and a failed one is tried again."""
    if not dry_run:
        _settle_rotations(session, gateway_for, now)
    outcomes = []
    for rotation in _rotations_due(session, now):
        if dry_run and _holder(session, _revoke_key(rotation.token_pk, True)) is not None:
            continue  # already revoked in dry run; the token stays listed
        reason = f"rotated: replaced by {rotation.parameters.get('new_token_id')}"
        try:
            with session.begin_nested():
                outcomes.append(
                    revoke(
                        session=session,
                        gateway_for=gateway_for,
                        actor=TOKENBOT,
                        token_pk=rotation.token_pk,
                        reason=reason,
                        dry_run=dry_run,
                    )
                )
        except Exception:
            logger.exception("rotation %s: revoking the old token failed", rotation.id)
    return outcomes


def _rotations_due(session: Session, now: datetime) -> list[Decision]:
    rows = session.execute(
        select(Decision)
        .join(Token, Token.id == Decision.token_pk)
        .where(Decision.action == ROTATE, Decision.status == APPLIED, Token.gone_at.is_(None))
        .order_by(Decision.id)
    ).scalars()
    return [
        row
        for row in rows
        if row.parameters.get("revoke_old_after") and _parse_time(row.parameters["revoke_old_after"]) <= now
    ]


# =============================================================================================
# not mine, owners


def not_mine(
    *, session: Session, actor: Actor, token_pk: int, note: str = "", deadline: DeadlineRef | None = None
) -> Outcome:
    """The owner says the token is not theirs: a request for the admins to pick its owner. The
    deadline the reminder was about, if any, is recorded: a denied request is not re-filed for it."""
    parameters = {"note": note, **_deadline_parameters(deadline)}
    subject = _authorize(session, actor, NOT_MINE, token_pk, parameters, live=True, deadline=deadline)
    if isinstance(subject, Outcome):
        return subject
    return _request_approval(session, subject, NOT_MINE, parameters, "they will find the token's owner")


def assign_owner(*, session: Session, actor: Actor, token_pk: int, owner_slack_id: str) -> Outcome:
    """Admins: make `owner_slack_id` the owner of the token's principal (every token of it in
    that workspace), and settle any open Not mine request about this token."""
    parameters = {"owner_slack_id": owner_slack_id}
    subject = _authorize(session, actor, ASSIGN_OWNER, token_pk, parameters, admin_only=True)
    if isinstance(subject, Outcome):
        return subject
    token = subject.token
    if not SLACK_USER_ID.match(owner_slack_id or ""):
        message = f"{owner_slack_id!r} is not a Slack user id (such as U012ABC)."
        return _refuse_subject(session, subject, ASSIGN_OWNER, parameters, "invalid", message)
    principal = subject.owner or _new_principal(session, token)
    if principal is None:
        message = f"{_sentence_label(token)} has no owner in Databricks to assign."
        return _refuse_subject(session, subject, ASSIGN_OWNER, parameters, "invalid", message)
    if principal.owner_slack_id == owner_slack_id:
        message = f"{_who(owner_slack_id)} already owns {_label(token)}."
        return _refuse_subject(session, subject, ASSIGN_OWNER, parameters, "no_change", message)
    parameters.update(principal_id=principal.principal_id, previous_owner_slack_id=principal.owner_slack_id)
    principal.owner_slack_id = owner_slack_id
    decision = _start(session, subject, ASSIGN_OWNER, parameters, approved_by=actor.slack_id)
    request = _holder(session, _request_key(token.id, NOT_MINE))
    if request is not None:
        _resolve(request, APPROVED, actor)
    return _applied(decision, _assigned_message(session, token, principal, owner_slack_id))


def _new_principal(session: Session, token: Token) -> Principal | None:
    if not token.owner_id:
        return None
    principal = Principal(workspace=token.workspace, principal_id=token.owner_id)
    session.add(principal)
    return principal


def _assigned_message(session: Session, token: Token, principal: Principal, owner_slack_id: str) -> str:
    others = session.execute(
        select(Token.id).where(
            Token.workspace == token.workspace,
            Token.owner_id == principal.principal_id,
            Token.gone_at.is_(None),
            Token.id != token.id,
        )
    ).all()
    message = f"{_who(owner_slack_id)} now owns {_label(token)}."
    if others:
        name = principal.display_name or principal.email or principal.application_id or principal.principal_id
        message += f" This covers the {len(others)} other live token(s) of {name} in {token.workspace} too."
    return message


# =============================================================================================
# requests to the admins: approve, deny


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
        message = "Pick the token's owner instead: approving a Not mine request needs a name."
        return _refuse_subject(session, subject, APPROVE, {"request_id": request.id}, "invalid", message)
    parameters = {**request.parameters, "request_id": request.id, "requested_by": request.actor_slack_id}
    if request.action == EXTEND:
        outcome = _grant_exemption(session, subject, parameters, approved_by=actor.slack_id)
    else:
        chosen = list(request.parameters.get("scopes") or ())
        outcome = _change_scopes(
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
        _resolve(request, APPROVED, actor)
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
    decision = _start(session, subject, request.action, parameters)
    _finish(decision, DENIED)
    _resolve(request, DENIED, actor)
    return _outcome(
        decision, f"Denied {_who(request.actor_slack_id)}'s request about {_label(subject.token)}."
    )


def _open_request(
    session: Session, actor: Actor, attempt: str, decision_id: int
) -> tuple[_Subject, Decision] | Outcome:
    """The request, locked after its token (always token first: no lock-order deadlock)."""
    request = session.get(Decision, decision_id)
    token_pk = request.token_pk if request is not None else None
    parameters = {"request_id": decision_id}
    if not actor.is_admin:
        message = "Only an admin can approve or deny requests."
        return _refuse(
            session, actor, _role(actor, None), attempt, token_pk, parameters, "not_admin", message
        )
    if request is None or token_pk is None or request.action not in APPROVABLE | {NOT_MINE}:
        message = "There is no such request."
        return _refuse(session, actor, ADMIN, attempt, token_pk, parameters, "invalid", message)
    subject = _authorize(session, actor, attempt, token_pk, parameters, live=attempt == APPROVE)
    if isinstance(subject, Outcome):
        return subject
    request = _lock(session, Decision, decision_id)
    if request.status != REQUESTED:
        decided_by = request.parameters.get("decided_by") or request.approved_by
        message = f"This request was already {request.status} by {_who(decided_by or '?')}."
        return _duplicate(session, subject, attempt, parameters, request, message)
    return subject, request


def _request_approval(
    session: Session, subject: _Subject, action: str, parameters: dict[str, Any], why: str
) -> Outcome:
    key = _request_key(subject.token.id, action)
    earlier = _holder(session, key)
    if earlier is not None:
        message = (
            f"A request about {_label(subject.token)} from {_who(earlier.actor_slack_id)} "
            f"is already waiting for an admin."
        )
        return _duplicate(session, subject, action, parameters, earlier, message)
    denied = _denied_before(session, subject, action, parameters)
    if denied is not None:
        # Asking again at once would only hold enforcement back again (DESIGN.md section 6).
        message = (
            f"An admin ({_who(denied.parameters.get('decided_by') or '?')}) already denied this request "
            f"about {_label(subject.token)} on {_when(denied.updated_at)}; it cannot be sent again for the "
            "same deadline. Talk to the admins if something changed."
        )
        return _refuse_subject(session, subject, action, parameters, DENIED_BEFORE, message, denied)
    decision = _claim(session, subject, action, parameters, key)
    if decision is None:
        return _busy(session, subject, action, parameters)
    return _outcome(
        decision,
        f"Sent to the admins: {why}. Nothing changes for {_label(subject.token)} until an admin decides.",
    )


def _denied_before(
    session: Session, subject: _Subject, action: str, parameters: Mapping[str, Any]
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


def _request_key(token_pk: int, action: str) -> str:
    return f"request:{token_pk}:{action}"


def _resolve(request: Decision, status: str, admin: Actor) -> None:
    request.status = status
    request.approved_by = admin.slack_id if status == APPROVED else None
    _merge(request, decided_by=admin.slack_id)
    _release(request, status)


# =============================================================================================
# for the reminders service


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
        message = "There is no failed decision to retry here; nothing was done."
        return _refuse(
            session,
            actor,
            _role(actor, None),
            "retry",
            None,
            {"decision_id": decision_id},
            "invalid",
            message,
        )
    parameters = failed.parameters or {}
    deadline = _deadline_from(parameters)
    common = {"session": session, "actor": actor, "token_pk": failed.token_pk}
    if failed.action == REVOKE:
        return revoke(
            **common,
            gateway_for=gateway_for,
            reason=parameters.get("reason", ""),
            dry_run=dry_run,
            deadline=deadline,
        )
    if failed.action == CONFIRM_SCOPES:
        return confirm_scopes(
            **common,
            gateway_for=gateway_for,
            scopes=parameters.get("scopes", ()),
            dry_run=dry_run,
            deadline=deadline,
        )
    if failed.action == RESTORE:
        return restore_scopes(
            **common, gateway_for=gateway_for, scopes=parameters.get("scopes", ()), dry_run=dry_run
        )
    if failed.action in (EXTEND, ROTATE) and deadline is not None:
        return extend(
            **common,
            gateway_for=gateway_for,
            deadline=deadline,
            days=int(parameters.get("days", 1)),
            reason=parameters.get("reason", ""),
            policy=policy,
            secret_bindings=secret_bindings,
            dry_run=dry_run,
        )
    message = "This decision cannot be retried from here; decide again from the reminder."
    return _refuse(
        session,
        actor,
        _role(actor, None),
        "retry",
        failed.token_pk,
        {"decision_id": decision_id},
        "invalid",
        message,
    )


def _deadline_from(parameters: Mapping[str, Any]) -> DeadlineRef | None:
    if not parameters.get("deadline_kind") or not parameters.get("due_at"):
        return None
    try:
        return DeadlineRef(
            kind=str(parameters["deadline_kind"]), due_at=_parse_time(str(parameters["due_at"]))
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
    ends = [_parse_time(p["until"]) for p in rows if _about(p, deadline_kind, due_date) and p.get("until")]
    return max(ends, default=None)


def _about(parameters: Mapping[str, Any], deadline_kind: str, due_date: date) -> bool:
    return (
        parameters.get("deadline_kind") == str(deadline_kind)
        and parameters.get("due_date") == due_date.isoformat()
    )


# =============================================================================================
# authorization, locks, records


def _authorize(
    session: Session,
    actor: Actor,
    action: str,
    token_pk: int,
    parameters: dict[str, Any],
    *,
    live: bool = False,
    admin_only: bool = False,
    deadline: DeadlineRef | None = None,
) -> _Subject | Outcome:
    """The locked token and the actor's role, or a recorded refusal (a stale `deadline` included)."""
    token = _lock(session, Token, token_pk)
    if token is None:
        message = "tokenbot does not know this token; nothing was done."
        parameters = {**parameters, "token_pk": token_pk}
        return _refuse(session, actor, _role(actor, None), action, None, parameters, "unknown_token", message)
    owner = _owner(session, token)
    role = _role(actor, owner)
    if admin_only and role not in (ADMIN, TOKENBOT_ROLE):
        return _refuse(
            session, actor, role, action, token.id, parameters, "not_admin", "Only an admin can do that."
        )
    if role == OTHER:
        message = "Only the token's owner or an admin can do that."
        return _refuse(session, actor, role, action, token.id, parameters, "not_owner", message)
    subject = _Subject(token=token, owner=owner, actor=actor, role=role)
    if live and token.gone_at is not None:
        message = f"{_gone_message(token)} Nothing to do."
        return _refuse_subject(session, subject, action, parameters, "token_gone", message)
    if deadline is not None and deadline.stale:
        return _stale(session, subject, action, parameters, deadline)
    return subject


def _stale(
    session: Session, subject: _Subject, action: str, parameters: dict[str, Any], deadline: DeadlineRef
) -> Outcome:
    message = (
        f"This was out of date: tokenbot computes no {_kind_words(deadline.kind)} on "
        f"{deadline.due_date.isoformat()} for {_label(subject.token)} now, so nothing was done. "
        "The message shows the current state; decide again from there."
    )
    return _refuse_subject(session, subject, action, parameters, STALE_REFERENCE, message)


def _kind_words(kind: str) -> str:
    try:
        return DEADLINE_LABELS[DeadlineKind(kind)].lower() + " deadline"
    except ValueError:
        return "such deadline"


def may_decide(*, session: Session, actor: Actor, token_pk: int) -> bool:
    """Read-only: whether the actor is the token's owner or an admin (to open a modal or not;
    the decision itself checks again, under the lock)."""
    token = session.get(Token, token_pk)
    return token is not None and _role(actor, _owner(session, token)) != OTHER


def _owner(session: Session, token: Token) -> Principal | None:
    if not token.owner_id:
        return None
    return session.execute(
        select(Principal).where(
            Principal.workspace == token.workspace, Principal.principal_id == token.owner_id
        )
    ).scalar_one_or_none()


def _role(actor: Actor, owner: Principal | None) -> str:
    if actor == TOKENBOT:
        return TOKENBOT_ROLE
    if actor.is_admin:
        return ADMIN
    if owner is not None and actor.slack_id in {owner.slack_user_id, owner.owner_slack_id} - {None}:
        return OWNER
    return OTHER


M = TypeVar("M", Token, Decision)


def _lock(session: Session, model: type[M], pk: int) -> M | None:
    """The row, fresh, locked until the caller's transaction ends.

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


def _holder(session: Session, key: str) -> Decision | None:
    """The decision holding an idempotency key, if any."""
    query = select(Decision).where(Decision.idempotency_key == key).execution_options(populate_existing=True)
    return session.execute(query).scalar_one_or_none()


def _release(decision: Decision, why: str) -> None:
    """Free the key for a later attempt, keeping a trace of what held it."""
    if decision.idempotency_key:
        decision.idempotency_key = f"{decision.idempotency_key}:{why}:{decision.id}"[:200]
        decision.updated_at = clock.now()


def _claim(
    session: Session,
    subject: _Subject,
    action: str,
    parameters: dict[str, Any],
    key: str,
    approved_by: str | None = None,
) -> Decision | None:
    """Insert the decision holding `key` before anything is called; None when another
    transaction holds the key (behind the token lock, only a caller that skipped the lock)."""
    decision = _new_decision(subject.actor, subject.role, action, subject.token.id, parameters, REQUESTED)
    decision.idempotency_key, decision.approved_by = key, approved_by
    try:
        with session.begin_nested():  # the IntegrityError must not break the caller's transaction
            session.add(decision)
            session.flush()
    except IntegrityError:
        return None
    _log(decision)
    return decision


def _start(
    session: Session,
    subject: _Subject,
    action: str,
    parameters: dict[str, Any],
    approved_by: str | None = None,
) -> Decision:
    """Insert the decision (`requested` until finished) before anything is called."""
    decision = _new_decision(subject.actor, subject.role, action, subject.token.id, parameters, REQUESTED)
    decision.approved_by = approved_by
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


def _finish(decision: Decision, status: str, error: str | None = None, **parameters: Any) -> None:
    decision.status = status
    decision.error = error[:2000] if error else None
    decision.updated_at = clock.now()
    if parameters:
        _merge(decision, **parameters)
    _log(decision)


def _merge(decision: Decision, **parameters: Any) -> None:
    # A new dict: the JSON column does not see changes made inside the old one.
    decision.parameters = {**decision.parameters, **parameters}


def _databricks(decision: Decision, dry_run: bool, call: Callable[[], T]) -> T | None:
    """The one place dry run is honoured: every mutating Databricks call goes through here."""
    if dry_run:
        _merge(decision, dry_run=True)
        return None
    return call()


def _applied(decision: Decision, message: str) -> Outcome:
    _finish(decision, APPLIED)
    return _outcome(decision, message)


def _failed(decision: Decision, error: GatewayError, what: str, tail: str = "") -> Outcome:
    _finish(decision, FAILED, error=error.message, error_kind=error.kind)
    _release(decision, "failed")  # Retry may claim again
    tail = tail or "Nothing was changed; you can try again."
    return _outcome(decision, f"{what}: {error.message}. {tail}")


def _refuse(
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
    return _outcome(decision, message, duplicate_of)


def _refuse_subject(
    session: Session,
    subject: _Subject,
    action: str,
    parameters: dict[str, Any],
    why: str,
    message: str,
    earlier: Decision | None = None,  # the decision this one repeats, if any
) -> Outcome:
    actor, role, token_pk = subject.actor, subject.role, subject.token.id
    earlier_id = earlier.id if earlier is not None else None
    return _refuse(session, actor, role, action, token_pk, parameters, why, message, earlier_id)


def _duplicate(
    session: Session,
    subject: _Subject,
    action: str,
    parameters: dict[str, Any],
    earlier: Decision,
    message: str,
) -> Outcome:
    return _refuse_subject(session, subject, action, parameters, "duplicate", message, earlier)


def _busy(session: Session, subject: _Subject, action: str, parameters: dict[str, Any]) -> Outcome:
    message = f"Someone else is deciding about {_label(subject.token)} right now; try again in a moment."
    return _refuse_subject(session, subject, action, parameters, "duplicate", message)


def _outcome(decision: Decision, message: str, duplicate_of: int | None = None) -> Outcome:
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


# =============================================================================================
# words


def _deadline_parameters(deadline: DeadlineRef | None) -> dict[str, Any]:
    if deadline is None:
        return {}
    return {
        "deadline_kind": str(deadline.kind),
        "due_date": deadline.due_date.isoformat(),
        "due_at": deadline.due_at.isoformat(),
    }


def _label(token: Token) -> str:
    comment = " ".join((token.comment or "").split())
    if len(comment) > 40:
        comment = comment[:39] + "…"
    named = f" ({comment})" if comment else ""
    # Plain text, as typed: the Slack builders escape messages once (`blocks.safe_text`).
    return f"token {token.token_id[:8]}{named} in {token.workspace}"


def _sentence_label(token: Token) -> str:
    """`_label` at the start of a sentence."""
    text = _label(token)
    return text[:1].upper() + text[1:]


def _list(scopes: Iterable[str]) -> str:
    scopes = list(scopes)
    return ("scope " if len(scopes) == 1 else "scopes ") + ", ".join(scopes)


def _who(slack_id: str) -> str:
    return slack_id if slack_id in (TOKENBOT.slack_id, "?") else f"<@{slack_id}>"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
