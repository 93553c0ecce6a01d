"""Which tokens are past tokenbot's policy deadline, and which of them the guards that read only
the database hold back (DESIGN.md section 6); bot/services/enforcement.py acts on the rest.

A token is overdue when its `org_policy` deadline (already moved by any active exemption) is at
or before now. Guards, each tested, each giving a held-back token its reason code:

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
- `dry_run_recorded`: in dry run, a token already recorded as revoked in dry run (once is enough).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from bot import clock
from bot.domain.deadlines import Deadline, DeadlineKind
from bot.domain.policy import Policy
from bot.models import Decision, Workspace, WorkspaceStatus
from bot.services import decisions, report
from bot.services.report import TokenView
from bot.services.vocabulary import HeldReason

logger = logging.getLogger(__name__)

SYNCS_OF_GRACE = 3  # a workspace's last good sync may be this many sync intervals old


@dataclass(frozen=True, slots=True)
class Overdue:
    view: TokenView
    deadline: Deadline

    @property
    def rule(self) -> str:
        return f"{self.deadline.action} ({self.deadline.reason})"


@dataclass
class Found:
    """One look at the overdue tokens: what the guards let through and what they held back."""

    overdue: int = 0  # org_policy deadlines passed, before the guards
    chosen: list[Overdue] = field(default_factory=list)  # most overdue first
    held: list[tuple[Overdue, HeldReason]] = field(default_factory=list)
    hold_ended: list[Overdue] = field(default_factory=list)  # held by a request until its hold ran out


def find(*, session: Session, policy: Policy, now: datetime, dry_run: bool, revoking: bool) -> Found:
    """Overdue org_policy deadlines, most overdue first, sorted by the guards. `revoking` adds
    the guards only revocation needs."""
    found = [
        Overdue(view, deadline)
        for view in report.token_views(session=session, policy=policy, now=now)
        for deadline in view.evaluation.deadlines
        if deadline.kind is DeadlineKind.ORG_POLICY and deadline.is_overdue(now)
    ]
    if not found:
        return Found()
    found.sort(key=lambda item: (item.deadline.due_at, item.view.workspace, item.view.token_id))
    clean = _freshly_synced(session, policy)
    held, ended = _held_back(session, {item.view.pk for item in found}, dry_run, policy, now)
    result = Found(len(found), hold_ended=[item for item in found if item.view.pk in ended])
    idle_since = now - timedelta(days=policy.enforce_min_idle_days)
    unclean: dict[str, int] = defaultdict(int)
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
            result.chosen.append(item)
        else:
            result.held.append((item, reason))
    for workspace, count in sorted(unclean.items()):
        logger.warning(
            "enforcement: %s overdue token(s) in %s left alone: its last sync failed or is too old",
            count,
            workspace,
        )
    return result


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
