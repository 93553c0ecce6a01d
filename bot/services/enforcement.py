"""Enforcement of tokenbot's own policy: what happens when an `org_policy` deadline passes.

The hourly job (bot/scheduler.py) and `tokenbot enforce` both call `run()`. A token is overdue
when its `org_policy` deadline (already moved by any active exemption) is at or before now. Then:

- `policy.enforce = true`: tokenbot revokes it through `decisions.revoke` (actor `tokenbot`, the
  rule that triggered it in the reason, so the decision row says why), tells the owner in a DM when
  their Slack user is known, and reports the run to the admins channel.
- `policy.enforce = false`: nothing is revoked; each overdue token is escalated to the admins
  channel once (a `notification` row of step "overdue", so the next run does not repeat it), with
  the decision buttons of a reminder. The digest lists these tokens as overdue.

Guards (DESIGN.md section 6), each tested, each giving a held-back token its reason code:

- `stale_sync`: its workspace's last sync was not clean (`stale` after a failed sync, `held` after a
  suspicious listing), or its last good sync is older than three sync intervals (by the local clock,
  which the clock check vouches for): its deadlines come from old data.
- `hold`: an open request to the admins (an extension awaiting approval, "not mine" awaiting an
  owner) waits for that answer, for at most `policy.request_hold_days` after the oldest open
  request was made: a request nobody answers cannot shield a token for ever. When that hold ends,
  the admins channel is told once per token and deadline (a `notification` of step "hold_ended"),
  and enforcement goes on. An owner's Accept is consent, not an objection.
- `recent_use`: used within `policy.enforce_min_idle_days`, whatever the rule says (the database
  keeps the best known last use: a listing that dropped the field does not erase it).
- `clock_skew`: before revoking anything, the local clock is compared with the `Date` header of a
  fresh answer from Slack and from each workspace concerned; more than five minutes apart (or a
  clock that cannot be read) and nothing is revoked, and the admins channel is told. A clock a year
  off makes every token look overdue.
- `breaker`: more tokens due than `policy.max_revocations_per_run`, or more than
  `policy.max_revocations_per_day` within 24 hours, trips the breaker (`bot/services/breaker.py`):
  nothing is revoked, the admins channel gets the list, and enforcement stays off until an admin
  resumes it (`/tokens enforcement resume`).
- `dry_run_recorded`: in dry run, a token already recorded as revoked in dry run (once is enough).

Dry run (`TOKENBOT_DRY_RUN`) records dry-run decisions and calls no mutating Databricks API;
`preview` (`tokenbot enforce --dry-run`) writes and sends nothing at all and only says what would
happen. Each revocation is its own transaction, so one failure cannot stop the others; messages go
out after the revocations are committed.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot import clock
from bot.db import session_scope
from bot.domain.policy import Deadline, DeadlineKind, Policy
from bot.models import Decision, Notification, NotificationStatus, Step, Workspace, WorkspaceStatus
from bot.services import breaker, clocks, decisions, digest, outbox, report
from bot.services.inventory import GatewayFactory
from bot.services.ports import (
    Delivery,
    DeliveryError,
    EnforcementNotifier,
    Recipient,
    ReminderItem,
    ReminderMessage,
    ReminderSender,
    TimeSource,
)
from bot.services.report import TokenView

logger = logging.getLogger(__name__)

OVERDUE_STEP = Step.OVERDUE
OVERDUE_NOTE = "past tokenbot's policy deadline with no decision; enforcement is off"
SYNCS_OF_GRACE = 3  # a workspace's last good sync may be this many sync intervals old


class HeldReason(StrEnum):
    """Why an overdue token was not revoked this run."""

    STALE_SYNC = "stale_sync"
    HOLD = "hold"
    RECENT_USE = "recent_use"
    CLOCK_SKEW = "clock_skew"
    BREAKER = "breaker"
    DRY_RUN_RECORDED = "dry_run_recorded"


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
class Overdue:
    view: TokenView
    deadline: Deadline

    @property
    def rule(self) -> str:
        return f"{self.deadline.action} ({self.deadline.reason})"


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
    found = [
        Overdue(view, deadline)
        for view in report.token_views(session=session, policy=policy, now=now)
        for deadline in view.evaluation.deadlines
        if deadline.kind is DeadlineKind.ORG_POLICY and deadline.is_overdue(now)
    ]
    summary.overdue = len(found)
    if not found:
        return []
    found.sort(key=lambda item: (item.deadline.due_at, item.view.workspace, item.view.token_id))
    clean = _freshly_synced(session, policy)
    held, ended = _held_back(session, {item.view.pk for item in found}, dry_run, policy, now)
    summary.hold_ended = [item for item in found if item.view.pk in ended]
    idle_since = now - timedelta(days=policy.enforce_min_idle_days)
    unclean: dict[str, int] = defaultdict(int)
    chosen = []
    for item in found:
        reason = None
        if item.view.workspace not in clean:
            reason = HeldReason.STALE_SYNC
            unclean[item.view.workspace] += 1
        elif item.view.pk in held:
            reason = held[item.view.pk]
        elif revoking and _used_since(item.view, idle_since):
            reason = HeldReason.RECENT_USE
        if reason is None:
            chosen.append(item)
        else:
            summary.note(item, Result.HELD, reason)
    for workspace, count in sorted(unclean.items()):
        logger.warning(
            "enforcement: %s overdue token(s) in %s left alone: its last sync failed or is too old",
            count,
            workspace,
        )
    summary.skipped_stale = sum(unclean.values())
    summary.waiting = sum(1 for item in summary.tokens if item.reason is HeldReason.HOLD)
    summary.recently_used = sum(1 for item in summary.tokens if item.reason is HeldReason.RECENT_USE)
    return chosen


def _freshly_synced(session: Session, policy: Policy) -> set[str]:
    """Workspaces whose last sync succeeded, recently enough that a missed sync job is noticed."""
    since = clock.now() - SYNCS_OF_GRACE * timedelta(minutes=policy.sync_interval_minutes)
    rows = session.execute(
        select(Workspace.name).where(
            Workspace.status == WorkspaceStatus.OK, Workspace.last_success_at >= since
        )
    )
    return set(rows.scalars())


def _used_since(view: TokenView, since: datetime) -> bool:
    """`last_used_on` is the midnight that starts the day of last use: the use may be up to a day later."""
    return view.last_used_on is not None and view.last_used_on + timedelta(days=1) > since


def _held_back(
    session: Session, pks: set[int], dry_run: bool, policy: Policy, now: datetime
) -> tuple[dict[int, HeldReason], set[int]]:
    """(held, hold ended): tokens whose oldest open request to the admins was made less than
    `policy.request_hold_days` ago (a newer request, of another kind, does not start the hold
    again), in dry run also those already revoked in dry run (recording the same dry-run revocation
    every hour would only add noise); and tokens whose hold has run out."""
    if not pks:
        return {}, set()
    rows = session.execute(
        select(
            Decision.token_pk, Decision.action, Decision.status, Decision.parameters, Decision.created_at
        ).where(
            Decision.token_pk.in_(list(pks)),
            Decision.status.in_((decisions.REQUESTED, decisions.APPLIED)),
        )
    )
    held: dict[int, HeldReason] = {}
    oldest_request: dict[int, datetime] = {}
    hold_since = now - timedelta(days=policy.request_hold_days)
    for token_pk, action, status, parameters, created_at in rows:
        if status == decisions.REQUESTED and action != decisions.REVOKE:
            # An open request (a revoke is `requested` only while it runs); one of unknown age holds nothing.
            made = created_at or hold_since
            oldest_request[token_pk] = min(made, oldest_request.get(token_pk, made))
        elif dry_run and action == decisions.REVOKE and (parameters or {}).get("dry_run"):
            held.setdefault(token_pk, HeldReason.DRY_RUN_RECORDED)
    ended = {pk for pk, made in oldest_request.items() if made <= hold_since}
    for pk in set(oldest_request) - ended:
        held[pk] = HeldReason.HOLD
    return held, ended - set(held)


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
# enforce = false: escalate once


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
    claim = f"enforcement-{uuid.uuid4().hex[:12]}"
    with session_scope(engine) as session:
        rows = _record_escalations(session, candidates, admin_channel, claim, now, step, note)
    if not rows:
        return
    about = {row.id: item for row, item in rows}

    def render(session: Session, claimed: list[Notification]) -> tuple[ReminderMessage, list[Notification]]:
        # What the admins hear about is what this run found overdue: nothing to evaluate again.
        items = tuple(
            ReminderItem.of(about[row.id].view, about[row.id].deadline, step, row.note, row.id)
            for row in claimed
        )
        return ReminderMessage(Recipient(admin_channel, admins_channel=True), items, now, escalation=True), []

    # A failure forgets the rows: the next enforcement run writes and sends them again.
    sent = outbox.send_claimed(
        engine,
        [row for row, _ in rows],
        render=render,
        send=sender.send,
        now=now,
        skipped_because="",
        on_failure=outbox.FailureRule.FORGET,
    )
    if sent.error is not None:
        summary.notify_failed += 1
        return
    summary.escalated = len(rows)
    escalated = {item.view.pk for _, item in rows}
    for item in candidates:
        summary.note(item, Result.ESCALATED if item.view.pk in escalated else Result.WOULD_ESCALATE)


def _record_escalations(
    session: Session,
    candidates: list[Overdue],
    admin_channel: str,
    claim: str,
    now: datetime,
    step: str = OVERDUE_STEP,
    note: str = OVERDUE_NOTE,
) -> list[tuple[Notification, Overdue]]:
    """One notification of `step` per token and deadline; those told before are skipped."""
    before = set(
        session.execute(
            select(Notification.token_pk, Notification.deadline_kind, Notification.due_date).where(
                Notification.token_pk.in_([item.view.pk for item in candidates]),
                Notification.step == step,
                Notification.recipient == admin_channel,
            )
        ).all()
    )
    written = []
    for item in candidates:
        if (item.view.pk, str(item.deadline.kind), item.deadline.due_at.date()) in before:
            continue
        row = Notification(
            token_pk=item.view.pk,
            deadline_kind=str(item.deadline.kind),
            due_date=item.deadline.due_at.date(),
            due_at=item.deadline.due_at,
            step=step,
            recipient=admin_channel,
            note=note,
            # claimed: the reminder runs leave it alone while this run sends it
            status=NotificationStatus.SENDING,
            claimed_by=claim,
            claimed_at=now,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            continue  # another run escalated it just now
        written.append((row, item))
    return written
