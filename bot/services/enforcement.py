"""Enforcement of tokenbot's own policy: what happens when an `org_policy` deadline passes.

The hourly job (bot/jobs/runners.py) and `tokenbot enforce` both call `run()`. A token is overdue
when its `org_policy` deadline (already moved by any active exemption) is at or before now. Then:

- `policy.enforce = true`: tokenbot revokes it through `decisions.revoke` (actor `tokenbot`, the
  rule that triggered it in the reason, so the decision row says why), tells the owner in a DM when
  their Slack user is known, and reports the run to the admins channel.
- `policy.enforce = false`: nothing is revoked; each overdue token is escalated to the admins
  channel once (a `notification` row of step "overdue", so the next run does not repeat it), with
  the decision buttons of a reminder. The digest lists these tokens as overdue.

Guards (DESIGN.md section 6), each tested, each giving a held-back token its reason code: those
read from the database (`stale_sync`, `hold`, `recent_use`, `dry_run_recorded`) are
bot/services/overdue.py's; then, before revoking:

- `clock_skew`: before revoking anything, the local clock is compared with the `Date` header of a
  fresh answer from Slack and from each workspace concerned; more than five minutes apart (or a
  clock that cannot be read) and nothing is revoked, and the admins channel is told. A clock a year
  off makes every token look overdue.
- `breaker`: more tokens due than `policy.max_revocations_per_run`, or more than
  `policy.max_revocations_per_day` within 24 hours, trips the breaker (`bot/services/breaker.py`):
  nothing is revoked, the admins channel gets the list, and enforcement stays off until an admin
  resumes it (`/tokens enforcement resume`).

Dry run (`TOKENBOT_DRY_RUN`) records dry-run decisions and calls no mutating Databricks API;
`preview` (`tokenbot enforce --dry-run`) writes and sends nothing at all and only says what would
happen. Each revocation is its own transaction, so one failure cannot stop the others; messages go
out after the revocations are committed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot.db import session_scope
from bot.domain.policy import Policy
from bot.models import Step
from bot.services import breaker, clocks, decisions, digest, escalations, overdue
from bot.services.inventory import GatewayFactory
from bot.services.overdue import Overdue
from bot.services.ports import (
    Delivery,
    DeliveryError,
    EnforcementNotifier,
    ReminderSender,
    TimeSource,
)
from bot.services.vocabulary import HeldReason

logger = logging.getLogger(__name__)

OVERDUE_STEP = Step.OVERDUE
OVERDUE_NOTE = "past tokenbot's policy deadline with no decision; enforcement is off"


class Result(StrEnum):
    """What one run did with one overdue token."""

    REVOKED = "revoked"  # applied (or recorded as a dry run)
    WOULD_REVOKE = "would_revoke"  # preview
    FAILED = "failed"
    REFUSED = "refused"  # someone revoked it meanwhile
    HELD = "held"
    ESCALATED = "escalated"  # enforcement off: told to the admins channel
    WOULD_ESCALATE = "would_escalate"  # enforcement off, preview (or already told)


HOLD_ENDED_STEP = Step.HOLD_ENDED
HOLD_ENDED_NOTE = "a request to the admins held enforcement back with no answer in time; enforcement goes on"


@dataclass(frozen=True, slots=True)
class Enforced:
    """A token one run revoked (or would have, in dry run), failed to revoke, or held back."""

    token: digest.TokenRef
    token_pk: int
    rule: str
    due_at: datetime
    status: str  # the decision's status: applied, failed, refused; "error" for a crash; "held"
    message: str
    already_gone: bool = False

    @classmethod
    def held(cls, item: Overdue, message: str = "") -> Enforced:
        token = digest.TokenRef.of(item.view)
        return cls(token, item.view.pk, item.rule, item.deadline.due_at, "held", message)


@dataclass(frozen=True, slots=True)
class TokenOutcome:
    """One overdue token in a run's summary (what `tokenbot enforce` prints)."""

    workspace: str
    token_id: str
    owner: str | None
    rule: str
    due_at: datetime
    result: Result
    reason: HeldReason | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["due_at"] = self.due_at.isoformat()
        return values


@dataclass
class EnforcementReport:
    """What the admins channel hears after a run that revoked or failed to revoke."""

    revoked: list[Enforced]
    failed: list[Enforced]
    dry_run: bool


@dataclass
class HeldReport:
    """What the admins channel hears when a guard stopped a whole run (clock, breaker)."""

    reason: HeldReason
    why: str
    tokens: list[Enforced]
    dry_run: bool


@dataclass
class EnforcementSummary:
    overdue: int = 0  # org_policy deadlines passed, before the guards
    skipped_stale: int = 0  # in a workspace whose last sync was not clean
    waiting: int = 0  # an open request to the admins holds them
    recently_used: int = 0  # used within policy.enforce_min_idle_days
    hold_ended: list[Overdue] = field(default_factory=list)  # held by a request until its hold ran out
    revoked: int = 0  # applied (or recorded as a dry run)
    failed: int = 0
    escalated: int = 0  # enforcement off: newly told to the admins channel
    notify_failed: int = 0
    dry_run: bool = False
    preview: bool = False
    clock_problem: str | None = None  # why the clocks were not trusted; nothing was revoked
    breaker: str | None = None  # why the breaker holds enforcement (tripped before, or by this run)
    breaker_tripped: bool = False  # this run tripped it
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (action, status) of each decision
    tokens: list[TokenOutcome] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        """A guard held the whole run back (clock or breaker)."""
        return bool(self.clock_problem or self.breaker)

    @property
    def held(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for item in self.tokens:
            if item.reason is not None:
                counts[str(item.reason)] += 1
        return dict(counts)

    def note(
        self, item: Overdue, result: Result, reason: HeldReason | None = None, message: str = ""
    ) -> None:
        self.tokens.append(
            TokenOutcome(
                item.view.workspace,
                item.view.token_id,
                item.view.owner,
                item.rule,
                item.deadline.due_at,
                result,
                reason,
                message or None,
            )
        )

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["tokens"] = [item.as_dict() for item in self.tokens]
        values["held"] = self.held
        values["stopped"] = self.stopped
        values.pop("outcomes")
        return values


# ---------------------------------------------------------------------------------------------
# the run


def run(
    *,
    engine: Engine,
    gateway_for: GatewayFactory,
    policy: Policy,
    notifier: EnforcementNotifier,
    sender: ReminderSender,
    admin_channel: str | None,
    now: datetime,
    slack_clock: TimeSource | None,
    dry_run: bool = False,
    preview: bool = False,
) -> EnforcementSummary:
    """One enforcement run: revoke (or escalate) every overdue token the guards let through.
    `slack_clock` None means Slack cannot be asked, and then nothing is revoked."""
    summary = EnforcementSummary(dry_run=dry_run, preview=preview)
    with session_scope(engine) as session:
        candidates = overdue_tokens(
            session=session,
            policy=policy,
            now=now,
            summary=summary,
            dry_run=dry_run and not preview,
            revoking=policy.enforce,
        )
    if summary.hold_ended and admin_channel and not preview:
        told = EnforcementSummary()  # its own counts: these are not the overdue escalations
        ended = summary.hold_ended
        _escalate(engine, sender, admin_channel, ended, now, told, HOLD_ENDED_STEP, HOLD_ENDED_NOTE)
        summary.notify_failed += told.notify_failed
    if not candidates:
        return summary
    if policy.enforce:
        _enforce(engine, gateway_for, policy, notifier, admin_channel, candidates, now, slack_clock, summary)
    elif preview:
        for item in candidates:
            summary.note(item, Result.WOULD_ESCALATE)
    else:
        _escalate(engine, sender, admin_channel, candidates, now, summary)
    return summary


def overdue_tokens(
    *,
    session: Session,
    policy: Policy,
    now: datetime,
    summary: EnforcementSummary | None = None,
    dry_run: bool = False,
    revoking: bool = False,
) -> list[Overdue]:
    """Overdue org_policy deadlines the guards let through, most overdue first; the others are
    noted in `summary` with their reason. `revoking` adds the guards only revocation needs."""
    summary = summary or EnforcementSummary()
    found = overdue.find(session=session, policy=policy, now=now, dry_run=dry_run, revoking=revoking)
    summary.overdue = found.overdue
    summary.hold_ended = found.hold_ended
    for item, reason in found.held:
        summary.note(item, Result.HELD, reason)
    summary.skipped_stale = sum(1 for _, reason in found.held if reason is HeldReason.STALE_SYNC)
    summary.waiting = sum(1 for item in summary.tokens if item.reason is HeldReason.HOLD)
    summary.recently_used = sum(1 for item in summary.tokens if item.reason is HeldReason.RECENT_USE)
    return found.chosen


# ---------------------------------------------------------------------------------------------
# enforce = true: the clock, the breaker, then revoke


def _enforce(
    engine: Engine,
    gateway_for: GatewayFactory,
    policy: Policy,
    notifier: EnforcementNotifier,
    admin_channel: str | None,
    candidates: list[Overdue],
    now: datetime,
    slack_clock: TimeSource | None,
    summary: EnforcementSummary,
) -> None:
    workspaces = sorted({item.view.workspace for item in candidates})
    sources = [clocks.DatabricksClock(gateway_for, name) for name in workspaces]
    problem = clocks.problem([slack_clock, *sources] if slack_clock else sources)
    if slack_clock is None:
        problem = "; ".join(filter(None, ["Slack cannot be asked the time (no Slack client)", problem]))
    if problem:
        summary.clock_problem = problem
        logger.error("enforcement held: %s", problem)
        _hold_all(notifier, admin_channel, candidates, HeldReason.CLOCK_SKEW, problem, summary)
        return
    with session_scope(engine) as session:
        current = breaker.state(session=session, now=now)
    if current.tripped:
        summary.breaker = current.why or "tripped"
        logger.warning("enforcement held: the breaker is tripped (%s); an admin resumes it", summary.breaker)
        for item in candidates:
            summary.note(item, Result.HELD, HeldReason.BREAKER)
        return
    why = breaker.trips(policy=policy, due=len(candidates), counted=current.counted)
    if why:
        summary.breaker = why
        if not summary.preview:
            with session_scope(engine) as session:
                breaker.trip(
                    session=session,
                    reason=why,
                    would_revoke=[_listed(item) for item in candidates],
                    now=now,
                    dry_run=summary.dry_run,
                )
            summary.breaker_tripped = True
            logger.error("enforcement breaker tripped: %s", why)
        _hold_all(notifier, admin_channel, candidates, HeldReason.BREAKER, why, summary)
        return
    if summary.preview:
        for item in candidates:
            summary.note(item, Result.WOULD_REVOKE)
        return
    _revoke_all(engine, gateway_for, notifier, admin_channel, candidates, summary)


def _listed(item: Overdue) -> dict[str, Any]:
    return {
        "workspace": item.view.workspace,
        "token_id": item.view.token_id,
        "owner": item.view.owner,
        "rule": item.rule,
        "due_at": item.deadline.due_at.isoformat(),
    }


def _hold_all(
    notifier: EnforcementNotifier,
    admin_channel: str | None,
    candidates: list[Overdue],
    reason: HeldReason,
    why: str,
    summary: EnforcementSummary,
) -> None:
    for item in candidates:
        summary.note(item, Result.HELD, reason)
    if summary.preview:
        return
    if not admin_channel:
        logger.error("enforcement held (%s) and slack.admin_channel is not set: nobody was alerted", why)
        return
    held = HeldReport(reason, why, [Enforced.held(item) for item in candidates], summary.dry_run)
    _deliver(lambda: notifier.admins_held(admin_channel, held), "the admins channel", summary)


def _revoke_all(
    engine: Engine,
    gateway_for: GatewayFactory,
    notifier: EnforcementNotifier,
    admin_channel: str | None,
    candidates: list[Overdue],
    summary: EnforcementSummary,
) -> None:
    revoked: list[Enforced] = []
    failed: list[Enforced] = []
    for item in candidates:
        enforced = _revoke_one(engine, gateway_for, item, summary.dry_run)
        if enforced.status != "error":
            summary.outcomes.append((decisions.REVOKE, enforced.status))
        if enforced.status == decisions.APPLIED:
            revoked.append(enforced)
            summary.note(item, Result.REVOKED, message=enforced.message)
        elif enforced.status in (decisions.FAILED, "error"):
            failed.append(enforced)
            summary.note(item, Result.FAILED, message=enforced.message)
        else:  # refused: someone revoked it meanwhile
            logger.info("enforcement: %s: %s", item.view.token_id, enforced.message)
            summary.note(item, Result.REFUSED, message=enforced.message)
    summary.revoked, summary.failed = len(revoked), len(failed)
    if not summary.dry_run:
        _tell_owners(notifier, [e for e in revoked if not e.already_gone], summary)
    if admin_channel and (revoked or failed):
        report_ = EnforcementReport(revoked, failed, summary.dry_run)
        _deliver(lambda: notifier.admins_report(admin_channel, report_), "the admins channel", summary)


def _revoke_one(engine: Engine, gateway_for: GatewayFactory, item: Overdue, dry_run: bool) -> Enforced:
    token = digest.TokenRef.of(item.view)
    try:
        with session_scope(engine) as session:
            outcome = decisions.revoke(
                session=session,
                gateway_for=gateway_for,
                actor=decisions.TOKENBOT,
                token_pk=item.view.pk,
                reason=item.rule,  # "tokenbot policy: revoke (inactive over 60 days) (last used ...)"
                dry_run=dry_run,
                deadline=decisions.DeadlineRef.of(item.deadline),
            )
    except Exception:  # one bad token must not stop the sweep
        logger.exception("enforcement: revoking %s in %s failed", item.view.token_id, item.view.workspace)
        return Enforced(token, item.view.pk, item.rule, item.deadline.due_at, "error", "unexpected error")
    return Enforced(
        token,
        item.view.pk,
        item.rule,
        item.deadline.due_at,
        outcome.status,
        outcome.message,
        outcome.already_gone,
    )


def _tell_owners(notifier: EnforcementNotifier, revoked: list[Enforced], summary: EnforcementSummary) -> None:
    by_owner: dict[str, list[Enforced]] = defaultdict(list)
    for item in revoked:
        if item.token.owner_slack_id:
            by_owner[item.token.owner_slack_id].append(item)
    for owner, items in sorted(by_owner.items()):
        _deliver(lambda o=owner, i=items: notifier.owner_revoked(o, i), f"owner {owner}", summary)


def _deliver(send: Callable[[], Delivery], whom: str, summary: EnforcementSummary) -> None:
    try:
        send()
    except DeliveryError as error:
        summary.notify_failed += 1
        logger.warning("enforcement: could not tell %s: %s", whom, error.message)


# ---------------------------------------------------------------------------------------------
# enforce = false: escalate once (bot/services/escalations.py)


def _escalate(
    engine: Engine,
    sender: ReminderSender,
    admin_channel: str | None,
    candidates: list[Overdue],
    now: datetime,
    summary: EnforcementSummary,
    step: str = OVERDUE_STEP,
    note: str = OVERDUE_NOTE,
) -> None:
    if not admin_channel:
        logger.warning(
            "%s token(s) are past tokenbot's policy deadline; enforcement is off and slack.admin_channel "
            "is not set, so only the digest and the report show them",
            len(candidates),
        )
        return
    told = escalations.tell_admins(engine, sender, admin_channel, candidates, now, step, note)
    if told is None:
        summary.notify_failed += 1
        return
    if not told:
        return
    summary.escalated = len(told)
    for item in candidates:
        summary.note(item, Result.ESCALATED if item.view.pk in told else Result.WOULD_ESCALATE)
