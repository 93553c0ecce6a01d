"""Enforcement of tokenbot's own policy: what happens when an `org_policy` deadline passes.

A scheduled job (bot/scheduler.py) calls `run()`. A token is overdue when its `org_policy`
deadline (already moved by any active exemption) is at or before now. Then:

- `policy.enforce = true`: tokenbot revokes it through `decisions.revoke` (actor `tokenbot`, the
  rule that triggered it in the reason, so the decision row says why), tells the owner in a DM when
  their Slack user is known, and reports the run to the admins channel.
- `policy.enforce = false`: nothing is revoked; each overdue token is escalated to the admins
  channel once (a `notification` row of step "overdue", so the next run does not repeat it), with
  the decision buttons of a reminder. The digest lists these tokens as overdue.

Guards, each tested: never for a token whose workspace did not sync cleanly last time (status other
than `ok`: `stale` after a failed sync, `held` after a suspicious one), since its deadlines come
from old data; never a Databricks call in dry run (`decisions.revoke` records a dry-run decision,
once per token); never more than `policy.max_revocations_per_run` revocations in one run: the most
overdue go first, then the run stops and alerts the admins channel with how many wait (a bad sync or
a bad rule must not revoke everything at once). Tokens with an open request to the admins (an
extension awaiting approval, "not mine" awaiting an owner) wait for that answer, for at most
`policy.request_hold_days` after the request was made: a request nobody answers cannot shield a
token for ever. When that hold ends, the admins channel is told once per token and deadline (a
`notification` of step "hold_ended"), and enforcement goes on. An owner's Accept is consent, not an
objection: it does not hold a token back.

Each revocation is its own transaction, so one failure cannot stop the others; messages go out
after the revocations are committed.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.db import session_scope
from bot.domain.policy import Deadline, DeadlineKind, Policy
from bot.models import Decision, Notification, Workspace
from bot.services import decisions, digest, report
from bot.services.inventory import GatewayFactory
from bot.services.ports import (
    Delivery,
    DeliveryError,
    Recipient,
    ReminderItem,
    ReminderMessage,
    ReminderSender,
)
from bot.services.report import TokenView

logger = logging.getLogger(__name__)

OVERDUE_STEP = "overdue"
OVERDUE_NOTE = "past tokenbot's policy deadline with no decision; enforcement is off"
HOLD_ENDED_STEP = "hold_ended"
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
    """A token one run revoked (or would have, in dry run), or failed to revoke."""

    token: digest.TokenRef
    token_pk: int
    rule: str
    due_at: datetime
    status: str  # the decision's status: applied, failed, refused; "error" for a crash
    message: str
    already_gone: bool = False


@dataclass
class EnforcementReport:
    """What the admins channel hears after a run that revoked, failed or stopped."""

    revoked: list[Enforced]
    failed: list[Enforced]
    remaining: int  # overdue tokens left for later runs by the per-run limit
    limit: int
    dry_run: bool


@dataclass
class EnforcementSummary:
    overdue: int = 0  # org_policy deadlines passed, before the guards
    skipped_stale: int = 0  # in a workspace whose last sync was not clean
    waiting: int = 0  # an open request to the admins holds them
    hold_ended: list[Overdue] = field(default_factory=list)  # held by a request until its hold ran out
    revoked: int = 0  # applied (or recorded as a dry run)
    failed: int = 0
    escalated: int = 0  # enforcement off: newly told to the admins channel
    remaining: int = 0  # over policy.max_revocations_per_run, left for the next runs
    notify_failed: int = 0
    dry_run: bool = False
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (action, status) of each decision

    @property
    def stopped(self) -> bool:
        return self.remaining > 0


class EnforcementNotifier(Protocol):
    def owner_revoked(self, owner_slack_id: str, items: Sequence[Enforced]) -> Delivery:
        """Tell an owner which of their tokens were revoked, and by which rule."""
        ...

    def admins_report(self, channel: str, report: EnforcementReport) -> Delivery:
        """Tell the admins channel what a run did (revoked, failed, stopped at the limit)."""
        ...


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
    dry_run: bool = False,
) -> EnforcementSummary:
    """One enforcement run: revoke (or escalate) every overdue token the guards let through."""
    summary = EnforcementSummary(dry_run=dry_run)
    with session_scope(engine) as session:
        candidates = overdue_tokens(session=session, policy=policy, now=now, summary=summary, dry_run=dry_run)
    if summary.hold_ended and admin_channel:
        told = EnforcementSummary()  # its own counts: these are not the overdue escalations
        ended = summary.hold_ended
        _escalate(engine, sender, admin_channel, ended, now, told, HOLD_ENDED_STEP, HOLD_ENDED_NOTE)
        summary.notify_failed += told.notify_failed
    if not candidates:
        return summary
    if policy.enforce:
        _enforce(engine, gateway_for, policy, notifier, admin_channel, candidates, dry_run, summary)
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
) -> list[Overdue]:
    """Overdue org_policy deadlines the guards let through, most overdue first."""
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
    clean = set(session.execute(select(Workspace.name).where(Workspace.status == "ok")).scalars())
    unclean: dict[str, int] = defaultdict(int)
    for item in found:
        if item.view.workspace not in clean:
            unclean[item.view.workspace] += 1
    for workspace, count in sorted(unclean.items()):
        logger.warning(
            "enforcement: %s overdue token(s) in %s left alone: its last sync did not succeed",
            count,
            workspace,
        )
    summary.skipped_stale = sum(unclean.values())
    found = [item for item in found if item.view.workspace in clean]
    held, ended = _held_back(session, {item.view.pk for item in found}, dry_run, policy, now)
    summary.waiting = sum(1 for item in found if item.view.pk in held)
    summary.hold_ended = [item for item in found if item.view.pk in ended]
    found = [item for item in found if item.view.pk not in held]
    found.sort(key=lambda item: (item.deadline.due_at, item.view.workspace, item.view.token_id))
    return found


def _held_back(
    session: Session, pks: set[int], dry_run: bool, policy: Policy, now: datetime
) -> tuple[set[int], set[int]]:
    """(held, hold ended): tokens whose oldest open request to the admins was made less than
    `policy.request_hold_days` ago (a newer request, of another kind, does not start the hold
    again), in dry run also those already revoked in dry run (recording the same dry-run revocation
    every hour would only add noise); and tokens whose hold has run out."""
    if not pks:
        return set(), set()
    rows = session.execute(
        select(
            Decision.token_pk, Decision.action, Decision.status, Decision.parameters, Decision.created_at
        ).where(
            Decision.token_pk.in_(list(pks)),
            Decision.status.in_((decisions.REQUESTED, decisions.APPLIED)),
        )
    )
    held: set[int] = set()
    oldest_request: dict[int, datetime] = {}
    hold_since = now - timedelta(days=policy.request_hold_days)
    for token_pk, action, status, parameters, created_at in rows:
        if status == decisions.REQUESTED and action != decisions.REVOKE:
            # An open request (a revoke is `requested` only while it runs); one of unknown age holds nothing.
            made = created_at or hold_since
            oldest_request[token_pk] = min(made, oldest_request.get(token_pk, made))
        elif dry_run and action == decisions.REVOKE and (parameters or {}).get("dry_run"):
            held.add(token_pk)
    ended = {pk for pk, made in oldest_request.items() if made <= hold_since}
    held |= set(oldest_request) - ended
    return held, ended - held


# ---------------------------------------------------------------------------------------------
# enforce = true: revoke


def _enforce(
    engine: Engine,
    gateway_for: GatewayFactory,
    policy: Policy,
    notifier: EnforcementNotifier,
    admin_channel: str | None,
    candidates: list[Overdue],
    dry_run: bool,
    summary: EnforcementSummary,
) -> None:
    limit = policy.max_revocations_per_run
    chosen = candidates[:limit]
    summary.remaining = len(candidates) - len(chosen)
    revoked: list[Enforced] = []
    failed: list[Enforced] = []
    for item in chosen:
        enforced = _revoke_one(engine, gateway_for, item, dry_run)
        if enforced.status != "error":
            summary.outcomes.append((decisions.REVOKE, enforced.status))
        if enforced.status == decisions.APPLIED:
            revoked.append(enforced)
        elif enforced.status in (decisions.FAILED, "error"):
            failed.append(enforced)
        else:  # refused: someone revoked it meanwhile
            logger.info("enforcement: %s: %s", item.view.token_id, enforced.message)
    summary.revoked, summary.failed = len(revoked), len(failed)
    if summary.remaining:
        logger.warning(
            "enforcement stopped at the limit of %s revocations per run; %s overdue token(s) wait",
            limit,
            summary.remaining,
        )
    if not dry_run:
        _tell_owners(notifier, [e for e in revoked if not e.already_gone], summary)
    if admin_channel and (revoked or failed or summary.remaining):
        report_ = EnforcementReport(revoked, failed, summary.remaining, limit, dry_run)
        _deliver(lambda: notifier.admins_report(admin_channel, report_), "the admins channel", summary)
    elif summary.remaining:
        logger.error(
            "enforcement stopped at its limit and slack.admin_channel is not set: nobody was alerted"
        )


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


def _deliver(send, whom: str, summary: EnforcementSummary) -> None:
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
    items = tuple(
        ReminderItem(
            reference=f"n{row.id}", view=item.view, deadline=item.deadline, step=step, note=row.note
        )
        for row, item in rows
    )
    message = ReminderMessage(Recipient(admin_channel, admins_channel=True), items, now, escalation=True)
    ids = [row.id for row, _ in rows]
    try:
        delivery = sender.send(message)
    except DeliveryError as error:
        # Forget the rows: the next run tries again.
        logger.warning("enforcement: could not escalate to %s: %s", admin_channel, error.message)
        summary.notify_failed += 1
        with session_scope(engine) as session:
            session.execute(delete(Notification).where(Notification.id.in_(ids)))
        return
    with session_scope(engine) as session:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(ids))
            .values(
                status="sent",
                claimed_by=None,
                channel=delivery.channel,
                message_ts=delivery.ts,
                sent_at=now,
                attempts=Notification.attempts + 1,
            )
        )
    summary.escalated = len(rows)


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
            step=step,
            recipient=admin_channel,
            note=note,
            status="sending",  # claimed: the reminder runs leave it alone while this run sends it
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
