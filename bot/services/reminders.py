"""Reminder runs: decide who must hear about which deadline, record it, then deliver.

Render, then deliver (STYLE.md 4). A run first plans and writes `notification` rows as `pending`
and commits; then (bot/services/outbox.py) it claims the pending rows of one recipient, sends one
message listing all of them, and marks them `sent` with the message's ts. So:
- a second run finds the rows and sends nothing again (the unique key of DESIGN.md section 3 holds
  even for two runs at once);
- a crash after planning leaves `pending` rows that the next run sends once;
- a crash while a message is in flight can repeat that one message once (its claim goes stale);
- a failed send keeps the row `pending` with the error and the attempts counted, and the next run
  retries it; a rate limit that outlasts the run leaves the rest `pending`.

Owners are paced (bot/domain/ladder.py, `pace` and `steps_to_send`; history in
bot/services/pacing.py): at most one DM a day and three in any seven days, each giving every
deadline the step it will have reached before the next one may go, and naming deadlines ahead of
their first step. What cannot wait for tomorrow is added to today's DM: its rows are claimed and
the message redrawn (chat.update) with what it listed and them, then they are recorded `sent` with
its ts; a crash in between makes the next run redraw it again, which shows the same message.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.db import session_scope
from bot.domain import ladder
from bot.domain.deadlines import Deadline
from bot.domain.ladder import current_step, escalation_due, held_for_quiet_hours
from bot.domain.policy import Policy
from bot.models import (
    Notification,
    Principal,
    Step,
)
from bot.services import (
    escalations,
    narrowing,
    notifications,
    outbox,
    pacing,
    recipients,
    reminder_messages,
    report,
)
from bot.services.decided import Decided, decided_for
from bot.services.ports import (
    Directory,
    Recipient,
    ReminderItem,
    ReminderMessage,
    ReminderSender,
    RunSummary,
)
from bot.services.report import TokenView

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Planned:
    view: TokenView
    deadline: Deadline
    step: str  # days before the deadline, or Step.ESCALATION
    recipient: Recipient
    note: str | None = None

    @property
    def key(self) -> tuple[int, str, date, str, str]:
        return (
            self.view.pk,
            str(self.deadline.kind),
            self.deadline.due_at.date(),
            self.step,
            self.recipient.slack_id,
        )


PLAN_CHUNK = 100  # owners planned (and their lookups made) before their messages start going out


def run(
    *,
    engine: Engine,
    policy: Policy,
    directory: Directory,
    sender: ReminderSender,
    admin_channel: str | None,
    now: datetime,
    dry_run: bool = False,
    time_budget: float | None = None,
) -> RunSummary:
    """One reminder run. `dry_run` plans and renders, writes nothing and sends nothing.

    Owners are planned a chunk at a time, and a chunk's messages go out while the next chunk's
    Slack lookups wait on the rate limit; the admins channel, and anyone who may also hear about a
    service principal's token, gets their one message at the end."""
    summary = RunSummary()
    if dry_run:
        with Session(engine) as session:
            planned = plan(
                session=session,
                policy=policy,
                directory=directory,
                admin_channel=admin_channel,
                now=now,
                summary=summary,
            )
            for message in _messages_from_plan(planned, now):
                summary.previews.append(sender.preview(message))
            session.rollback()
        summary.previews += _narrowed(engine, policy, directory, sender, admin_channel, now, summary, True)
        return summary
    with session_scope(engine) as session:
        work = _due_work(session, policy, now)
        assigned_owners = set(
            session.execute(
                select(Principal.owner_slack_id).where(Principal.owner_slack_id.is_not(None))
            ).scalars()
        )
    delivery = _dispatcher(engine, policy, sender, admin_channel, now, time_budget)
    with ThreadPoolExecutor(max_workers=DELIVERY_WORKERS, thread_name_prefix="remind") as pool:
        early = []
        for chunk in _owner_chunks(work.due, PLAN_CHUNK):
            with session_scope(engine) as session:
                planned = _plan_group(session, chunk, work, policy, directory, admin_channel, now, summary)
                record_pending(session=session, planned=planned, now=now)
            ready = {
                p.recipient.slack_id
                for p in planned
                if not p.recipient.admins_channel and p.recipient.slack_id not in assigned_owners
            }
            early += [pool.submit(delivery.deliver, recipient) for recipient in sorted(ready)]
        for future in early:
            _count(summary, future.result())
    deliver_pending(
        engine=engine,
        policy=policy,
        sender=sender,
        admin_channel=admin_channel,
        now=now,
        summary=summary,
        time_budget=time_budget,
        delivery=delivery,
    )
    _narrowed(engine, policy, directory, sender, admin_channel, now, summary, False)
    return summary


def _narrowed(engine, policy, directory, sender, admin_channel, now, summary, dry_run) -> list[str]:
    """The one message after auto-scoping narrowed a token (bot/services/narrowing.py); its
    notification rows (Step.NARROWED) are delivered there, not by `deliver_pending`."""
    done = narrowing.notify_narrowed(
        engine=engine,
        policy=policy,
        directory=directory,
        sender=sender,
        admin_channel=admin_channel,
        now=now,
        dry_run=dry_run,
    )
    summary.sent_messages += done.sent_messages
    summary.sent_notifications += done.sent_notifications
    summary.failed += done.failed
    summary.held_for_quiet_hours += done.held_for_quiet_hours
    return done.previews


# ---------------------------------------------------------------------------------------------
# planning


@dataclass
class _Work:
    """What a run must consider: due (token, deadline, step), what was decided, what was sent."""

    due: list[tuple[TokenView, Deadline, int | None]]  # None: its first step is still ahead
    decided: Decided
    already: set[tuple[int, str, date, str, str]]
    directory: Directory | None = None  # set to recipients.Unreachable once Slack stopped answering lookups
    given: dict[tuple[int, str, date, str], int] = field(default_factory=dict)  # nearest step sent

    def __post_init__(self) -> None:
        for token_pk, kind, day, step, recipient in self.already:
            self._give((token_pk, kind, day, recipient), step)

    def _give(self, deadline: tuple[int, str, date, str], step: str) -> None:
        if step.isdigit():
            self.given[deadline] = min(int(step), self.given.get(deadline, int(step)))

    def note(self, planned: Planned) -> None:
        """This run plans it: later candidates must not plan it again."""
        self.already.add(planned.key)
        token_pk, kind, day, step, recipient = planned.key
        self._give((token_pk, kind, day, recipient), step)

    def given_to(self, planned: Planned) -> int | None:
        token_pk, kind, day, _, recipient = planned.key
        return self.given.get((token_pk, kind, day, recipient))


def plan(
    *,
    session: Session,
    policy: Policy,
    directory: Directory,
    admin_channel: str | None,
    now: datetime,
    summary: RunSummary | None = None,
) -> list[Planned]:
    """Every (token, deadline, step, recipient) due now that has no notification yet."""
    summary = summary or RunSummary()
    work = _due_work(session, policy, now)
    return _plan_group(session, work.due, work, policy, directory, admin_channel, now, summary)


def _due_work(session: Session, policy: Policy, now: datetime) -> _Work:
    """Every deadline with a step due, and, for the owners that have one, their deadlines close
    enough to be named ahead of their first step (ladder.NAMING_AHEAD)."""
    views = report.token_views(session=session, policy=policy, now=now)
    by_owner: dict[str, list[tuple[TokenView, Deadline, int | None]]] = defaultdict(list)
    for view in views:
        steps = _due_steps(view, policy, now)
        by_owner[_owner_key(view)] += [(view, deadline, step) for deadline, step in steps]
    due = [item for items in by_owner.values() if any(step for _, _, step in items) for item in items]
    pks = {view.pk for view, _, _ in due}
    if not pks:
        return _Work([], Decided(set(), set(), {}), set())
    return _Work(due, decided_for(session, pks), notifications.existing_keys(session, pks))


def _owner_key(view: TokenView) -> str:
    """One owner across workspaces: users are matched by email."""
    if view.owner_kind == "user" and view.owner:
        return view.owner.lower()
    return f"{view.workspace}/{view.owner_id}"


def _owner_chunks(due: list[tuple[TokenView, Deadline, int | None]], size: int):
    """The due items in chunks of about `size` owners; all of one owner's items stay in one chunk."""
    by_owner: dict[str, list[tuple[TokenView, Deadline, int | None]]] = defaultdict(list)
    for item in due:
        by_owner[_owner_key(item[0])].append(item)
    owners = list(by_owner.values())
    for start in range(0, len(owners), size):
        yield [item for group in owners[start : start + size] for item in group]


def _plan_group(
    session: Session,
    due: list[tuple[TokenView, Deadline, int | None]],
    work: _Work,
    policy: Policy,
    directory: Directory,
    admin_channel: str | None,
    now: datetime,
    summary: RunSummary,
) -> list[Planned]:
    window = policy.quiet_window()
    decided, already = work.decided, work.already
    principals = recipients.load_principals(
        session=session, keys={(view.workspace, view.owner_id or "") for view, _, _ in due}
    )
    planned: list[Planned] = []
    owners: dict[str, list[Planned]] = defaultdict(list)  # DMs, paced per owner (ladder.pace)
    for view, deadline, step in due:
        deadline_key = (view.pk, str(deadline.kind), deadline.due_at.date())
        if view.pk in decided.silenced or deadline_key in decided.settled:
            continue
        if decided.snoozed.get(deadline_key, now) > now:
            continue
        try:
            recipient = recipients.recipient_for(
                principal=principals.get((view.workspace, view.owner_id or "")),
                directory=work.directory or directory,
                admin_channel=admin_channel,
                now=now,
            )
        except Exception as error:  # Slack unreachable for this lookup: try again next run
            work.directory = recipients.Unreachable(
                error
            )  # and don't wait out the retries for every other owner
            logger.warning(
                "cannot look up the owner of %s in Slack (%s); it waits for the next run",
                view.token_id,
                type(error).__name__,
            )
            summary.lookups_failed += 1
            continue
        if recipient is None:
            logger.warning(
                "token %s in %s: its owner cannot be reached and slack.admin_channel is not set",
                view.token_id,
                view.workspace,
            )
            continue
        if step is None and recipient.admins_channel:
            continue  # named ahead only in an owner's own DM
        candidates = []
        if not recipient.admins_channel and held_for_quiet_hours(now, recipient.tz, window, deadline.due_at):
            summary.held_for_quiet_hours += step is not None  # the admins channel has no quiet hours
        else:
            candidate = Planned(view, deadline, str(step or ""), recipient, recipient.reason)
            if recipient.admins_channel:
                candidates.append(candidate)
            else:
                owners[recipient.slack_id].append(candidate)
        if (
            step is not None
            and admin_channel
            and not recipient.admins_channel
            and escalation_due(deadline.due_at, now, policy.escalate_after_days, escalations.RUN_EVERY)
        ):
            owner = view.owner or view.owner_id or "unknown"
            candidates.append(
                Planned(
                    view,
                    deadline,
                    Step.ESCALATION,
                    Recipient(admin_channel, admins_channel=True),
                    f"{owner} has not decided yet",
                )
            )
        for candidate in candidates:
            if candidate.key not in already:
                work.note(candidate)
                planned.append(candidate)
    planned = _paced(session, owners, work, policy, now) + planned  # owners' rows first, as before
    summary.planned += len(planned)
    summary.escalations += sum(1 for p in planned if p.step == Step.ESCALATION)
    session.flush()  # recipient lookups cached on principal rows
    return planned


def _due_steps(view: TokenView, policy: Policy, now: datetime) -> list[tuple[Deadline, int | None]]:
    """The deadlines of a token whose reminder time has come, and (step None) those close enough to
    be named ahead of their first step; passed ones are for enforcement."""
    ahead = timedelta(days=max(policy.reminder_days)) + ladder.NAMING_AHEAD
    found: list[tuple[Deadline, int | None]] = []
    for deadline in view.evaluation.deadlines:
        if deadline.due_at <= now:
            continue
        step = current_step(deadline.due_at, now, policy.reminder_days)
        if step or deadline.due_at - now <= ahead:
            found.append((deadline, step))
    return found


def _paced(
    session: Session, owners: dict[str, list[Planned]], work: _Work, policy: Policy, now: datetime
) -> list[Planned]:
    """What each owner's DM carries now: at most one DM a day and ladder.MAX_DMS_PER_WEEK a week,
    every step given no later than it falls due (module ladder, `steps_to_send`)."""
    if not owners:
        return []
    window = policy.quiet_window()
    history = pacing.sent_dms(session=session, recipients=list(owners), since=now - timedelta(days=7))
    planned: list[Planned] = []
    for slack_id, candidates in owners.items():
        sent = [dm.at for dm in history.get(slack_id, [])]
        where = ladder.pace(now, candidates[0].recipient.tz, window, sent)
        seen = [
            ladder.Reminder(c.deadline.due_at, int(c.step) if c.step else None, work.given_to(c))
            for c in candidates
        ]
        steps = ladder.steps_to_send(seen, where, now, policy.reminder_days)
        for candidate, step in zip(candidates, steps, strict=True):
            chosen = replace(candidate, step=str(step)) if step is not None else None
            if chosen is not None and chosen.key not in work.already:
                work.note(chosen)
                planned.append(chosen)
    return planned


def record_pending(*, session: Session, planned: list[Planned], now: datetime) -> int:
    """Write the plan as `pending` rows; a row another run wrote meanwhile is skipped, not doubled."""
    written = 0
    for item in planned:
        token_pk, kind, due_date, step, recipient = item.key
        row = Notification(
            token_pk=token_pk,
            deadline_kind=kind,
            due_date=due_date,
            due_at=item.deadline.due_at,
            step=step,
            recipient=recipient,
            note=item.note,
            created_at=now,
        )
        if notifications.add_once(session, row):
            written += 1
        else:
            logger.info("notification %s already written by another run", item.key)
    return written


# ---------------------------------------------------------------------------------------------
# delivery (bot/services/outbox.py)


DELIVERY_WORKERS = 4  # messages to different owners go out side by side; each has its own DM channel
REMINDERS = Notification.step != Step.NARROWED  # the narrowed message is bot/services/narrowing.py's


def deliver_pending(
    *,
    engine: Engine,
    policy: Policy,
    sender: ReminderSender,
    admin_channel: str | None,
    now: datetime,
    summary: RunSummary,
    time_budget: float | None = None,
    delivery: outbox.Dispatcher | None = None,
) -> None:
    """Send every pending notification: one message per recipient, each committed as it goes.

    A rate limit that outlasts the client's retries, or the end of `time_budget`, stops the run;
    what is not sent stays pending for the next one."""
    delivery = delivery or _dispatcher(engine, policy, sender, admin_channel, now, time_budget)
    with session_scope(engine) as session:
        outbox.release_stale_claims(session, now)
        waiting = outbox.waiting_recipients(session, REMINDERS)
    _count(summary, delivery.deliver_all(waiting, DELIVERY_WORKERS))
    if delivery.stopped.is_set():
        summary.left_pending += outbox.count_unsent(engine)


def _dispatcher(
    engine: Engine,
    policy: Policy,
    sender: ReminderSender,
    admin_channel: str | None,
    now: datetime,
    time_budget: float | None,
) -> outbox.Dispatcher:
    def render(session: Session, rows: list[Notification]):
        recipient = rows[0].recipient
        message, skipped = reminder_messages.message_for(session, policy, rows, recipient, admin_channel, now)
        if message is None or message.recipient.admins_channel:
            return message, skipped
        return reminder_messages.added_to_today(session, policy, message, now) or message, skipped

    def send(message: ReminderMessage | pacing.Addition):
        if isinstance(message, pacing.Addition):
            return sender.add_to(message)
        return sender.send(message)

    def deliver(recipient: str) -> outbox.Sent:
        return outbox.deliver_to(
            engine,
            recipient,
            run_id=notifications.claim_id(),
            now=now,
            which=REMINDERS,
            render=render,
            send=send,
            skipped_because="no longer due (decided, gone or moved)",
        )

    return outbox.Dispatcher(deliver, name="remind", time_budget=time_budget)


def _count(summary: RunSummary, sent: outbox.Sent) -> None:
    summary.sent_messages += sent.messages
    summary.sent_notifications += sent.notifications
    summary.failed += sent.failed


def _messages_from_plan(planned: list[Planned], now: datetime) -> list[ReminderMessage]:
    """Dry run: the messages the plan would send, one per recipient."""
    by_recipient: dict[str, list[Planned]] = defaultdict(list)
    for item in planned:
        by_recipient[item.recipient.slack_id].append(item)
    messages = []
    for items in by_recipient.values():
        items.sort(key=lambda p: (p.deadline.due_at, p.view.workspace, p.view.token_id))
        reminder_items = tuple(ReminderItem.of(p.view, p.deadline, p.step, p.note, None) for p in items)
        escalation = any(p.step == Step.ESCALATION for p in items)
        messages.append(ReminderMessage(items[0].recipient, reminder_items, now, escalation=escalation))
    return messages
